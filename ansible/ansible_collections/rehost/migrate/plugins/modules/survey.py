#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: survey
short_description: Inventory an old server with rehost survey, as facts
description:
  - Runs C(rehost survey HOST --for DURATION --json) and returns the inventory (services along the chain
    socket, process, unit, package, configuration, data, keys and names, each fact with where it
    was found; cron jobs, timers, units, packages, accounts, mounts, the firewall, gaps) as the
    fact C(rehost_survey).
  - What the survey could not read is returned as C(gaps), not a failure (rehost exits 1 then);
    the module fails when the host could not be surveyed (exit 2). The inventory is the old
    server's data and stays in the (JSON-encoded) result; nothing of it is printed as text.
  - The survey reads only; it runs the same in check mode.
author:
  - rehost contributors (@rehost)
version_added: 0.1.0
options:
  host:
    description:
      - The server, C([USER@]HOST) or C(ssh://[USER@]HOST[:PORT]) (reached over ssh by rehost), or a host of O(plan).
      - Without it, the machine the task runs on.
    type: str
  sample_for:
    description:
      - How long to sample the clients connected to the listening ports, once a second (C(30s), C(5m); C(0) not at all).
      - Without it, rehost's default (5 minutes).
    type: str
  ssh_config:
    description: The ssh config file for O(host) (C(ssh -F)).
    type: path
  plan:
    description: Take O(host) as a host of this plan.
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
- name: Inventory each old server
  rehost.migrate.survey:
    host: "root@{{ ansible_host }}"
    sample_for: 1m
  delegate_to: localhost

- name: Show what serves
  ansible.builtin.debug:
    msg: "{{ rehost_survey.services | map(attribute='id') | list }}"
'''

RETURN = r'''
ansible_facts:
  description: C(rehost_survey), the inventory as C(rehost survey --json) prints it (its C(format) first).
  returned: on success
  type: dict
services:
  description: How many services the survey found.
  returned: on success
  type: int
gaps:
  description: What the survey could not read (each with where and why).
  returned: on success
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, Rehost, common_argument_spec, ssh_args, ssh_options_spec)

# The inventory format this module knows; a later one is returned as it is, with a warning.
FORMAT = 1


def main():
    spec = common_argument_spec()
    spec.update(ssh_options_spec())
    spec.update(host=dict(type='str'), sample_for=dict(type='str'))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_by=dict(env='plan'))
    p = module.params
    rehost = Rehost(module)
    args = ['survey'] + ([p['host']] if p['host'] else []) + ['--json'] + ssh_args(p)
    if p['sample_for']:
        args += ['--for', p['sample_for']]
    # Exit 1: surveyed, with gaps (what could not be read), which the inventory lists.
    rc, doc, err = rehost.document(args, allowed=(OK, FINDINGS))
    if not isinstance(doc, dict) or 'format' not in doc:
        module.fail_json(msg='rehost survey printed no inventory (no `format` field)', result=doc,
                         findings=[dict(source='rehost', message='no inventory')])
    if doc.get('format') != FORMAT:
        module.warn('the inventory has format %s; this module knows format %s' % (
            doc.get('format'), FORMAT))
    module.exit_json(changed=False, ansible_facts=dict(rehost_survey=doc),
                     services=len(doc.get('services') or []), gaps=doc.get('gaps') or [])


if __name__ == '__main__':
    main()
