# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)
"""What the modules read from a plan file themselves: its window.

Only the window is read here, to wait for it before a run; everything else about a plan is
rehost's to read (``rehost check --json``). Python 3.11's ``tomllib`` reads the file; on an
older Python the window is unknown and rehost alone enforces it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

try:
    import tomllib  # Python 3.11 and later
    HAS_TOMLLIB = True
except ImportError:  # pragma: no cover - older Python: rehost enforces the window alone
    tomllib = None
    HAS_TOMLLIB = False


def parse_time(text):
    """An RFC 3339 time with an offset, as the plan writes it, as an aware datetime."""
    value = text.strip()
    if value.endswith('Z'):
        value = value[:-1] + '+00:00'
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError('%s has no offset' % text)
    return parsed


def window(path, env=None):
    """The window that binds a run of ``path`` in ``env`` (production's, or the environment's
    own), as ``dict(start=..., end=...)`` with the plan's text, or None: no window, or it could
    not be read here (rehost still enforces it)."""
    if not HAS_TOMLLIB:
        return None
    try:
        with open(path, 'rb') as handle:
            doc = tomllib.load(handle)
    except (OSError, ValueError):
        return None
    if env:
        section = (doc.get('environments') or {}).get(env) or {}
    else:
        section = doc.get('migration') or {}
    found = section.get('window')
    if not isinstance(found, dict):
        return None
    start, end = found.get('start'), found.get('end')
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        parse_time(start)
        parse_time(end)
    except ValueError:
        return None
    return dict(start=start, end=end)


def seconds_until(text, now=None):
    """Seconds from ``now`` (default: this moment) until the time ``text``; negative when it
    has passed."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (parse_time(text) - now).total_seconds()
