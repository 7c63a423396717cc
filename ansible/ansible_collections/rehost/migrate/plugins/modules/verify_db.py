#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: verify_db
short_description: Compare a database with its copy, or exercise it, with rehost
description:
  - Runs C(rehost verify db OLD NEW --json) (schema, per-table counts and checksums computed in
    the servers, sequences; differing rows named by key), or with O(exercise) shows that the
    server can read, change and add to its data (rolled back and checked unchanged).
  - Fails on differences (exit 1; C(findings) lists them) or when a side could not be read
    (exit 2). Reads only (an exercise is rolled back), so it runs the same in check mode.
  - Passwords come from C(?password_file=PATH) on the connecting host or the client's own ways;
    none is ever printed or returned.
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  old:
    description: The original, C(postgres://USER@HOST:PORT/DB), C(mysql://...), C(sqlite:PATH), or C(HOST:URL) to connect from that host.
    type: str
    required: true
  new:
    description: The copy, in the same forms (not with O(exercise)).
    type: str
  exercise:
    description: Exercise O(old) instead of comparing.
    type: bool
    default: false
  tables:
    description: Only these tables (C(schema.table) or C(table)).
    type: list
    elements: str
    default: []
  parallel:
    description: Queries in flight per database (default 4).
    type: int
  ssh_config:
    description: The ssh config file for C(HOST:URL) locations (C(ssh -F)).
    type: path
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
- name: The new cluster holds the same data
  rehost.migrate.verify_db:
    old: "db01:postgres://postgres@127.0.0.1:5432/billing"
    new: "db02:postgres://postgres@127.0.0.1:5432/billing"
  delegate_to: localhost
'''

RETURN = r'''
equal:
  description: Whether the databases are equal (or the exercise passed).
  returned: always
  type: bool
summary:
  description: rehost's one-line summary, with what was not compared.
  returned: always
  type: str
not_compared:
  description: What this verification did not compare.
  returned: always
  type: list
  elements: str
findings:
  description: Each difference (C(source) C(difference) and rehost's fields); rehost's error lines as C(source) C(rehost).
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
    FINDINGS, OK, TROUBLE, Rehost, common_argument_spec, tail)


def main():
    spec = common_argument_spec()
    spec.update(
        old=dict(type='str', required=True),
        new=dict(type='str'),
        exercise=dict(type='bool', default=False),
        tables=dict(type='list', elements='str', default=[]),
        parallel=dict(type='int'),
        ssh_config=dict(type='path'),
    )
    module = AnsibleModule(
        argument_spec=spec, supports_check_mode=True,
        required_if=[('exercise', False, ('new',))],
    )
    p = module.params
    if p['exercise'] and p['new']:
        module.fail_json(msg='exercise takes only old: it exercises that database, new is not used')
    rehost = Rehost(module)
    args = ['verify', 'db', p['old']]
    if p['exercise']:
        args.append('--exercise')
    else:
        args.append(p['new'])
    args.append('--json')
    for table in p['tables']:
        args += ['--table', table]
    if p['parallel']:
        args += ['--parallel', str(p['parallel'])]
    if p['ssh_config']:
        args += ['--ssh-config', p['ssh_config']]
    rc, doc, err = rehost.document(args, allowed=(OK, FINDINGS, TROUBLE))
    findings = [dict(f, source='difference') for f in doc.get('findings') or []]
    result = dict(changed=False, equal=rc == OK, summary=doc.get('summary'),
                  not_compared=doc.get('not_compared') or [], result=doc, rc=rc,
                  findings=findings + [dict(source='rehost', message=line) for line in tail(err)])
    if rc == OK:
        module.exit_json(**result)
    module.fail_json(msg=doc.get('summary') or 'rehost verify db exited with %s' % rc, **result)


if __name__ == '__main__':
    main()
