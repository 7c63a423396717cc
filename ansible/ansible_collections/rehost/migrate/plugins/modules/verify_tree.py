#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: verify_tree
short_description: Prove a copy of a tree complete and correct with rehost
description:
  - Runs C(rehost verify tree A B --json) and returns its totals, findings and warnings.
  - Each side is walked and hashed on the host that holds it (C(HOST:PATH), C(ssh://));
    only manifests cross the network.
  - Fails when the trees differ (exit 1; C(findings) lists each difference with its C(class),
    C(path), C(a) and C(b)) or when a side could not be fully verified (exit 2).
  - Reads only, so it runs the same in check mode.
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  a:
    description: The original, a tree (C(PATH), C(HOST:PATH), C(ssh://USER@HOST:PORT/PATH)) or a manifest written by C(rehost manifest).
    type: str
    required: true
  b:
    description: The copy, in the same forms.
    type: str
    required: true
  exclude:
    description: Leave out entries matching these globs (rsync's meaning) and everything below them.
    type: list
    elements: str
    default: []
  ignore:
    description: Do not compare these classes of difference (C(mode), C(owner), C(group), C(mtime), C(xattr), C(acl), ...).
    type: list
    elements: str
    default: []
  full:
    description: Read every file, trusting nothing from the previous verification of this pair.
    type: bool
    default: false
  threads:
    description: Reader threads (default 16).
    type: int
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
- name: The copy on the new server is complete and correct
  rehost.migrate.verify_tree:
    a: "root@old01:/srv/data"
    b: "root@new01:/srv/data"
    exclude: ["*.tmp"]
  delegate_to: localhost
'''

RETURN = r'''
equal:
  description: Whether the trees are equal (exit 0).
  returned: always
  type: bool
totals:
  description: Entries and bytes on each side, equal, rehashed, trusted, by class.
  returned: always
  type: dict
findings:
  description: Each difference (C(source) C(difference), C(class), C(path), C(a), C(b)); rehost's error lines as C(source) C(rehost).
  returned: always
  type: list
  elements: dict
result:
  description: The whole JSON document C(rehost verify tree) printed.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, TROUBLE, Rehost, common_argument_spec, ssh_args, ssh_options_spec, tail)


def main():
    spec = common_argument_spec()
    spec.update(ssh_options_spec())
    spec.update(
        a=dict(type='str', required=True),
        b=dict(type='str', required=True),
        exclude=dict(type='list', elements='str', default=[]),
        ignore=dict(type='list', elements='str', default=[]),
        full=dict(type='bool', default=False),
        threads=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_by=dict(env='plan'))
    p = module.params
    rehost = Rehost(module)
    args = ['verify', 'tree', p['a'], p['b'], '--json'] + ssh_args(p)
    for glob in p['exclude']:
        args += ['--exclude', glob]
    for cls in p['ignore']:
        args += ['--ignore', cls]
    if p['full']:
        args.append('--full')
    if p['threads']:
        args += ['--threads', str(p['threads'])]
    rc, doc, err = rehost.document(args, allowed=(OK, FINDINGS, TROUBLE))
    findings = [dict(f, source='difference') for f in doc.get('findings') or []]
    result = dict(changed=False, equal=rc == OK, totals=doc.get('totals'), result=doc, rc=rc,
                  findings=findings + [dict(source='rehost', message=line) for line in tail(err)])
    if rc == OK:
        module.exit_json(**result)
    what = '%d difference(s)' % len(findings) if rc == FINDINGS else 'not fully verified'
    module.fail_json(msg='%s is not a complete and correct copy of %s: %s' % (
        p['b'], p['a'], what), **result)


if __name__ == '__main__':
    main()
