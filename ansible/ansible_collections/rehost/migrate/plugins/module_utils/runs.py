# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)
"""A run's state as ``rehost status --json`` gives it, and a run's events folded into results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import tempfile

from ansible_collections.rehost.migrate.plugins.module_utils.rehost import OK, state_args

# Step states that need no further run.
SETTLED = ('done', 'skipped')


def status(rehost, params, plan):
    """``rehost status --json`` of the plan's run (the environment's, the state directory's).

    A ``state_dir`` that does not exist yet is a run that never started: rehost refuses to
    show it (it does not create state for a status), so an empty directory of ours stands in
    for it, and every step reads as pending. Nothing of the run's own state is written."""
    scratch = None
    p = dict(params)
    if p.get('state_dir') and not os.path.isdir(p['state_dir']):
        scratch = tempfile.mkdtemp(prefix='rehost-status-')
        p['state_dir'] = scratch
    try:
        args = ['status', plan, '--json'] + state_args(p)
        rc, doc, err = rehost.document(args, allowed=(OK,))
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return doc


def step_lines(doc):
    """One line per step, ``ID: STATUS``, for diffs."""
    return ''.join('%s: %s\n' % (s.get('id'), s.get('status')) for s in doc.get('steps') or [])


def to_run(doc, until=None):
    """The ids of the steps a run would start now, in order: every step not done or skipped,
    up to and including ``until``."""
    ids = []
    for s in doc.get('steps') or []:
        if s.get('status') not in SETTLED:
            ids.append(s.get('id'))
        if until is not None and s.get('id') == until:
            break
    return ids


def fold(events):
    """The events of ``rehost run --json`` as results: the steps that ran, the rollback, the
    pre-flight, decisions and warnings, the summary and the journal's head."""
    steps, started = [], {}
    out = dict(steps_run=steps, rollback=None, preflight=None, decisions=[], warnings=[],
               summary=None, ok=None, stopped_after=None, journal_head=None)
    for e in events:
        kind = e.get('event')
        if kind == 'step_started':
            started[e.get('id')] = e
        elif kind == 'step_finished':
            begun = started.get(e.get('id'), {})
            steps.append(dict(
                id=e.get('id'), kind=begun.get('kind'), host=begun.get('host'),
                attempt=begun.get('attempt'), result=e.get('result'),
                elapsed_ms=e.get('elapsed_ms'), detail=e.get('detail'),
                confirmed_by=e.get('confirmed_by')))
        elif kind == 'rollback_started':
            out['rollback'] = dict(failed=e.get('failed'), steps=e.get('steps') or [], rolled_back=[])
        elif kind == 'rolled_back':
            if out['rollback'] is None:
                out['rollback'] = dict(failed=None, steps=[], rolled_back=[])
            out['rollback']['rolled_back'].append(
                dict(id=e.get('id'), ok=e.get('ok'), detail=e.get('detail')))
        elif kind == 'preflight':
            out['preflight'] = dict(hosts=e.get('hosts') or [], problems=e.get('problems') or [])
        elif kind == 'decision':
            out['decisions'].append(dict(what=e.get('what'), detail=e.get('detail')))
        elif kind == 'warning':
            out['warnings'].append(e.get('message'))
        elif kind == 'run_finished':
            out['summary'] = e.get('summary')
            out['ok'] = e.get('ok')
        elif kind == 'run_stopped':
            # --until: this invocation ended after that step; the run goes on next time.
            out['summary'] = e.get('summary')
            out['ok'] = True
            out['stopped_after'] = e.get('after')
        elif kind == 'journal_head':
            out['journal_head'] = dict(head=e.get('head'), records=e.get('records'),
                                       signed=e.get('signed'), verify=e.get('verify'))
    # A step started and never finished (the run was killed or interrupted in it).
    finished = set(s['id'] for s in steps)
    for sid, e in started.items():
        if sid not in finished:
            steps.append(dict(id=sid, kind=e.get('kind'), host=e.get('host'),
                              attempt=e.get('attempt'), result='interrupted', elapsed_ms=None,
                              detail='started, no end reported', confirmed_by=None))
    out['started'] = len(started)
    return out


def failure_findings(folded):
    """A failed run's findings: the steps that did not finish done, the rollback's commands,
    the pre-flight's problems."""
    findings = []
    for s in folded['steps_run']:
        if s.get('result') != 'done':
            findings.append(dict(source='step', step=s.get('id'), kind=s.get('kind'),
                                 host=s.get('host'), result=s.get('result'),
                                 message=s.get('detail')))
    rollback = folded.get('rollback')
    if rollback:
        for r in rollback['rolled_back']:
            findings.append(dict(source='rollback', step=r.get('id'), ok=r.get('ok'),
                                 message=r.get('detail')))
    preflight = folded.get('preflight') or {}
    for p in preflight.get('problems') or []:
        findings.append(dict(source='preflight', message=p))
    return findings
