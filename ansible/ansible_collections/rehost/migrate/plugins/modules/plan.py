#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: plan
short_description: Check a rehost plan, lint it against M 2.319 and run the pre-flight
description:
  - Runs C(rehost check PLAN --json), with C(--hosts) the pre-flight of C(rehost run) as well,
    and returns the validation errors, the M 2.319 lint findings and the pre-flight problems as
    structured C(findings).
  - Fails when the plan is not valid, when the pre-flight finds a problem (a host that cannot
    be opened, a source that is missing, a destination without room, a program or unit that is
    not there), or when it has lint findings and O(accept_findings) is not set.
  - Changes nothing, on the hosts or in the state directory, so it runs the same in check mode.
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  plan:
    description: The plan file on the machine this task runs on.
    type: path
  content:
    description:
      - The plan's text instead of O(plan) (a template rendered with C(lookup('template', ...)));
        written to a private temporary file for the call and removed after it. Paths in it
        must be absolute.
    type: str
  env:
    description: The rehearsal environment whose hosts the pre-flight opens (default production).
    type: str
  hosts:
    description:
      - Run the pre-flight (C(--hosts)), opening every host the steps use.
      - Without it only the plan is checked and linted; no host is reached.
    type: bool
    default: true
  ssh_config:
    description: The ssh config file for ssh hosts whose plan entry names none (C(ssh -F)).
    type: path
  accept_findings:
    description:
      - Do not fail on M 2.319 lint findings; they are still returned.
      - C(rehost.migrate.run) records the acceptance in the journal when it runs.
    type: bool
    default: false
  rehost:
    description: The rehost binary, a path or a name looked up on E(PATH).
    type: str
    default: rehost
attributes:
  check_mode:
    description: Changes nothing; runs the same.
    support: full
  diff_mode:
    description: Not supported.
    support: none
notes:
  - The plan is read on the machine the task runs on (usually the control node, with
    C(delegate_to)); rehost reaches the plan's hosts itself, over ssh.
'''

EXAMPLES = r'''
- name: Check the plan and run the pre-flight on its hosts
  rehost.migrate.plan:
    plan: /srv/migrations/db01/plan.toml
  delegate_to: localhost

- name: Lint only, without reaching any host
  rehost.migrate.plan:
    plan: /srv/migrations/db01/plan.toml
    hosts: false
  delegate_to: localhost
'''

RETURN = r'''
valid:
  description: Whether the plan parsed and validated (no errors).
  returned: always
  type: bool
steps:
  description: How many steps the plan has.
  returned: always
  type: int
findings:
  description:
    - Every error, lint finding and pre-flight problem, each with C(source) (C(error), C(lint),
      C(preflight), C(rehost)) and rehost's fields (C(code), C(message), C(line), C(column),
      C(help), C(clause)).
  returned: always
  type: list
  elements: dict
  sample:
    - source: lint
      code: no-window
      message: the migration has no maintenance window
      line: 1
      column: 1
preflight:
  description: The pre-flight's C(hosts), C(problems), C(warnings) and C(deferred) checks (null without O(hosts)).
  returned: always
  type: dict
window:
  description: The window that binds the run (C(start), C(end)), as the plan writes it; null when none or unreadable here.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, TROUBLE, PlanFile, Rehost, check_findings, common_argument_spec, plan_options_spec)
from ansible_collections.rehost.migrate.plugins.module_utils.plan_file import window


def main():
    spec = common_argument_spec()
    spec.update(plan_options_spec())
    spec.update(
        env=dict(type='str'),
        hosts=dict(type='bool', default=True),
        ssh_config=dict(type='path'),
        accept_findings=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[('plan', 'content')],
                           mutually_exclusive=[('plan', 'content')])
    with PlanFile(module) as plan:
        check(module, plan)


def check(module, plan):
    p = module.params
    rehost = Rehost(module)
    shown = p['plan'] or 'the plan given as content'
    args = ['check', plan, '--json']
    if p['hosts']:
        args.append('--hosts')
        if p['env']:
            args += ['--env', p['env']]
        if p['ssh_config']:
            args += ['--ssh-config', p['ssh_config']]
    rc, doc, err = rehost.document(args, allowed=(OK, FINDINGS, TROUBLE))
    findings = check_findings(doc)
    result = dict(
        changed=False,
        valid=bool(doc.get('valid')),
        steps=doc.get('steps') or 0,
        findings=findings,
        preflight=doc.get('preflight'),
        window=window(plan, p['env']),
    )
    errors = [f for f in findings if f['source'] == 'error']
    problems = [f for f in findings if f['source'] == 'preflight']
    lint = [f for f in findings if f['source'] == 'lint']
    if rc == TROUBLE and not errors and not problems:
        rehost.fail_trouble(rc, err, args, doc=doc, findings=findings)
    if errors:
        module.fail_json(msg='the plan %s has %d error(s): %s' % (
            shown, len(errors), '; '.join(describe(f) for f in errors)), **result)
    if problems:
        module.fail_json(msg='the pre-flight of %s found %d problem(s): %s' % (
            shown, len(problems), '; '.join(f['message'] for f in problems)), **result)
    if lint and not p['accept_findings']:
        module.fail_json(
            msg='the plan %s has %d M 2.319 finding(s): %s; fix them, or set accept_findings '
                '(rehost records the acceptance in the journal)' % (
                    shown, len(lint), ', '.join(f.get('code', '?') for f in lint)),
            **result)
    module.exit_json(**result)


def describe(finding):
    where = ''
    if finding.get('line'):
        where = 'line %s: ' % finding['line']
    return where + str(finding.get('message', finding))


if __name__ == '__main__':
    main()
