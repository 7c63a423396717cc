#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: keys
short_description: Find key material, and prove it reached the new system, with rehost
description:
  - With O(command=scan), runs C(rehost keys scan LOCATION... --json) and returns every key and
    certificate found (kind, algorithm, public fingerprints, owner, mode); a private key others
    may read is a problem.
  - With O(command=compare), runs C(rehost keys compare OLD NEW --json) and returns each key's
    verdict (present, moved, missing, extra), matched by public fingerprint whatever its path.
  - Only public facts are returned; no private key byte or passphrase is ever printed.
  - Fails on a problem or a missing key (exit 1) or when something could not be read (exit 2),
    with C(findings). Reads only, so it runs the same in check mode.
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  command:
    description: C(scan) or C(compare).
    type: str
    choices: [scan, compare]
    default: scan
  locations:
    description: With C(scan), the files or directories (C(PATH), C(HOST:PATH), C(ssh://)).
    type: list
    elements: str
    default: []
  old:
    description: With C(compare), where the keys are now.
    type: str
  new:
    description: With C(compare), where they must be.
    type: str
  password_file:
    description: Open PKCS#12 bundles with the passwords in this file (one a line, mode 0600).
    type: path
  ssh_config:
    description: The ssh config file for C(HOST:PATH) and C(ssh://) locations (C(ssh -F)).
    type: path
  plan:
    description: Take C(HOST) in C(HOST:PATH) as a host of this plan.
    type: path
  env:
    description: With O(plan), the plan's hosts in this rehearsal environment.
    type: str
  rehost:
    description: The rehost binary, a path or a name looked up on E(PATH).
    type: str
    default: rehost
attributes:
  check_mode:
    description: Reads only; runs the same.
    support: full
  diff_mode:
    description: Not supported.
    support: none
'''

EXAMPLES = r'''
- name: Every key of the old server is on the new one
  rehost.migrate.keys:
    command: compare
    old: "root@old01:/etc/ssl/private"
    new: "root@new01:/etc/ssl/private"
  delegate_to: localhost
'''

RETURN = r'''
found:
  description: With C(scan), every key found (per location, flattened, with C(location)); with C(compare), each key's verdict.
  returned: always
  type: list
  elements: dict
findings:
  description: Problems, missing keys and read errors (C(source) C(key), C(problem), C(error)); rehost's error lines as C(source) C(rehost).
  returned: always
  type: list
  elements: dict
result:
  description: The whole JSON document rehost printed.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, TROUBLE, Rehost, common_argument_spec, ssh_args, ssh_options_spec, tail)


def scan_result(doc):
    keys, findings = [], []
    for scan in doc.get('scans') or []:
        location = scan.get('location')
        for key in scan.get('keys') or []:
            keys.append(dict(key, location=location))
            for problem in key.get('problems') or []:
                findings.append(dict(source='problem', location=location,
                                     path=key.get('path'), message=problem))
        for error in scan.get('errors') or []:
            item = dict(error) if isinstance(error, dict) else dict(message=error)
            item.update(source='error', location=location)
            findings.append(item)
    return keys, findings


def compare_result(doc):
    keys = list(doc.get('keys') or [])
    findings = [dict(k, source='key') for k in keys if k.get('verdict') not in ('present', 'moved', 'extra')]
    for problem in doc.get('problems') or []:
        item = dict(problem) if isinstance(problem, dict) else dict(message=problem)
        item['source'] = 'problem'
        findings.append(item)
    for error in doc.get('errors') or []:
        item = dict(error) if isinstance(error, dict) else dict(message=error)
        item['source'] = 'error'
        findings.append(item)
    return keys, findings


def main():
    spec = common_argument_spec()
    spec.update(ssh_options_spec())
    spec.update(
        command=dict(type='str', choices=['scan', 'compare'], default='scan'),
        locations=dict(type='list', elements='str', default=[]),
        old=dict(type='str'),
        new=dict(type='str'),
        password_file=dict(type='path', no_log=False),
    )
    module = AnsibleModule(
        argument_spec=spec, supports_check_mode=True,
        required_if=[('command', 'compare', ('old', 'new'))],
        required_by=dict(env='plan'),
    )
    p = module.params
    rehost = Rehost(module)
    if p['command'] == 'scan':
        if not p['locations']:
            module.fail_json(msg='keys scan needs locations: the files or directories to scan')
        args = ['keys', 'scan'] + p['locations']
    else:
        args = ['keys', 'compare', p['old'], p['new']]
    args += ['--json'] + ssh_args(p)
    if p['password_file']:
        args += ['--password-file', p['password_file']]
    rc, doc, err = rehost.document(args, allowed=(OK, FINDINGS, TROUBLE))
    keys, findings = scan_result(doc) if p['command'] == 'scan' else compare_result(doc)
    findings += [dict(source='rehost', message=line) for line in tail(err)]
    result = dict(changed=False, found=keys, findings=findings, result=doc, rc=rc)
    if rc == OK:
        module.exit_json(**result)
    module.fail_json(msg='rehost keys %s: %s' % (
        p['command'], 'findings' if rc == FINDINGS else 'not everything could be read or identified'),
        **result)


if __name__ == '__main__':
    main()
