#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: report
short_description: Write the evidence of a rehost run (HTML, JSON, Markdown)
description:
  - Runs C(rehost report PLAN) on a run's state directory and returns the files written and
    the report's verdict (from C(report.json)).
  - A report whose verdict is failed is still written and returned; the module fails only when
    rehost could not write it (exit 2).
  - C(changed) is true when a file's content changed (the report is deterministic; written
    again from the same journal, it is the same).
  - For the whole fleet, C(rehost fleet report STATEDIR...) gathers every server's state
    directory into one matrix (see the rehost documentation).
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  plan:
    description: The plan file (when it is gone, rehost reads the plan from its snapshot in the state directory).
    type: path
    required: true
  env:
    description: The rehearsal environment whose run to report (default production).
    type: str
  state_dir:
    description: The directory of the plan's runs (C(--state)); default C(.rehost/STEM) next to the plan.
    type: path
  output:
    description: The directory to write into (default the run's state directory); created if missing, refused when another user could write it.
    type: path
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [html, json, md]
    default: [html, json, md]
  mode:
    description: The files' mode with O(output), in octal.
    type: str
    default: '0600'
  sign_key:
    description: Sign the journal's head with this SSH key (C(ssh-keygen -Y sign)).
    type: path
  hmac_key:
    description: Sign the journal's head with a BLAKE3 keyed hash under the key in this file.
    type: path
  rehost:
    description: The rehost binary, a path or a name looked up on E(PATH).
    type: str
    default: rehost
attributes:
  check_mode:
    description: Writes nothing; reports the files it would write.
    support: full
  diff_mode:
    description: Not supported.
    support: none
'''

EXAMPLES = r'''
- name: Write db01's evidence next to its plan
  rehost.migrate.report:
    plan: /srv/migrations/db01/plan.toml
    output: /srv/migrations/db01/report
  delegate_to: localhost
'''

RETURN = r'''
files:
  description: The files written (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
exit_code:
  description: rehost's exit code, 0 when the verdict passed, 1 when it did not (the files are written either way).
  returned: when not in check mode
  type: int
verdict:
  description: The report's verdict from C(report.json) (C(level), C(headline), C(items)); null without the json format or in check mode.
  returned: always
  type: dict
'''

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, Rehost, common_argument_spec, state_args)

NAMES = dict(html='report.html', json='report.json', md='report.md')


def digest(path):
    try:
        with open(path, 'rb') as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (IOError, OSError):
        return None


def main():
    spec = common_argument_spec()
    spec.update(
        plan=dict(type='path', required=True),
        env=dict(type='str'),
        state_dir=dict(type='path'),
        output=dict(type='path'),
        formats=dict(type='list', elements='str', choices=['html', 'json', 'md'],
                     default=['html', 'json', 'md']),
        mode=dict(type='str', default='0600'),
        sign_key=dict(type='path', no_log=False),
        hmac_key=dict(type='path', no_log=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    rehost = Rehost(module)
    where = p['output']
    if not where:
        base = p['state_dir'] or os.path.join(
            os.path.dirname(os.path.abspath(p['plan'])), '.rehost',
            os.path.splitext(os.path.basename(p['plan']))[0])
        where = os.path.join(base, p['env'] or 'production')
    files = [os.path.join(where, NAMES[f]) for f in p['formats']]
    if module.check_mode:
        module.exit_json(changed=True, files=files, verdict=None)
    before = dict((f, digest(f)) for f in files)
    args = ['report', p['plan'], '--format', ','.join(p['formats'])] + state_args(p)
    if p['output']:
        args += ['--output', p['output'], '--mode', p['mode']]
    for option in ('sign_key', 'hmac_key'):
        if p[option]:
            args += ['--' + option.replace('_', '-'), p[option]]
    rc, out, err, argv = rehost.run(args)
    if rc not in (OK, FINDINGS):
        rehost.fail_trouble(rc, err, argv)
    verdict = None
    if 'json' in p['formats']:
        try:
            with open(os.path.join(where, NAMES['json'])) as handle:
                verdict = json.load(handle).get('verdict')
        except (IOError, OSError, ValueError):
            verdict = None
    changed = any(digest(f) != before[f] for f in files)
    module.exit_json(changed=changed, files=files, verdict=verdict, exit_code=rc)


if __name__ == '__main__':
    main()
