#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: run
short_description: Run a rehost plan, or its steps up to a named one
description:
  - Runs C(rehost run PLAN --json) and returns each step that ran, the rollback, the pre-flight,
    the decisions and the journal's head as structured results.
  - The run resumes where the journal says; a finished run runs nothing, a run stopped by a
    failure, an interruption or O(until) goes on from its next step.
    C(changed) is true exactly when a step ran (or a rollback did).
  - On failure rehost itself rolls back the finished steps when the plan says
    C(on_failure = "rollback"); the module fails with C(msg) naming the step and the rollback,
    and C(findings) holding the failed step, each rollback command's outcome and any
    pre-flight problem.
  - In check mode nothing runs; the result says which steps would run (C(would_run)) and
    C(changed) is true when there are any. With C(--diff) both modes show each step's state
    before and after.
  - Long runs go with C(async) and C(poll) on the task; the module itself waits for the run.
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
        must be absolute, and O(state_dir) is required with it.
    type: str
  env:
    description: Rehearse in this environment of the plan instead of running production.
    type: str
  state_dir:
    description: The directory of the plan's runs (C(--state)); default C(.rehost/STEM) next to the plan.
    type: path
  until:
    description:
      - Stop once this step is done (C(rehost run --until)); the next run resumes after it.
    type: str
  accept_findings:
    description: Run in production although the plan has M 2.319 lint findings (recorded).
    type: bool
    default: false
  accept_plan_change:
    description: Continue although the plan changed since the run began (recorded).
    type: bool
    default: false
  ignore_window:
    description: Start steps that need the window outside it (recorded).
    type: bool
    default: false
  window_wait:
    description:
      - When the plan's window (production's, or the environment's own) opens within this many
        seconds, wait for it before running; when it opens later, fail without running.
      - 0 waits for nothing; rehost refuses a step that needs the window outside it either way.
    type: int
    default: 0
  retry_interrupted:
    description: Run again a non-idempotent step that started but did not finish (recorded).
    type: bool
    default: false
  skip_interrupted:
    description: Treat a step that started but did not finish as done (recorded).
    type: bool
    default: false
  confirm_manual:
    description:
      - Confirm every manual step without asking (C(--yes), recorded, as O(confirm_as) or the login).
      - Without it a manual step is recorded as not confirmed and the run stops there; the
        next run asks again.
    type: bool
    default: false
  confirm_as:
    description: Who confirms manual steps (recorded in the journal).
    type: str
  ssh_config:
    description: The ssh config file for ssh hosts whose plan entry names none (C(ssh -F)).
    type: path
  sign_key:
    description: Sign the journal's head with this SSH key (C(ssh-keygen -Y sign)); not inside the state directory.
    type: path
  hmac_key:
    description: Sign the journal's head with a BLAKE3 keyed hash under the key in this file (mode 0600).
    type: path
  rehost:
    description: The rehost binary, a path or a name looked up on E(PATH).
    type: str
    default: rehost
attributes:
  check_mode:
    description: Reports the steps that would run; runs nothing.
    support: full
  diff_mode:
    description: Each step's state before and after (in check mode, as it would be).
    support: full
notes:
  - Run it on the machine that holds the plan and the state directories (C(delegate_to));
    rehost reaches the plan's hosts itself, over ssh, and runs the work on them.
  - A manual step, or the point of no return's confirmation, reads "no" from the module and
    is recorded as not confirmed; set O(confirm_manual) to confirm them.
'''

EXAMPLES = r'''
- name: Migrate db01 by its plan (rolled back by the plan when a step fails)
  rehost.migrate.run:
    plan: /srv/migrations/db01/plan.toml
    window_wait: 3600
  delegate_to: localhost
  async: 14400
  poll: 30

- name: The bulk copy the day before, nothing after it
  rehost.migrate.run:
    plan: /srv/migrations/db01/plan.toml
    until: bulk-copy
  delegate_to: localhost
'''

RETURN = r'''
steps_run:
  description: Each step that ran, in order, with C(id), C(kind), C(host), C(attempt),
    C(result) (C(done), C(failed), C(not_confirmed), C(interrupted), C(skipped)),
    C(elapsed_ms), C(detail), C(confirmed_by).
  returned: when not in check mode
  type: list
  elements: dict
would_run:
  description: The ids of the steps a run starts now (up to O(until)).
  returned: always
  type: list
  elements: str
rollback:
  description: The rollback after a failed step, C(failed), C(steps) and C(rolled_back) (each C(id), C(ok), C(detail)); null when none ran.
  returned: when not in check mode
  type: dict
preflight:
  description: The pre-flight of this run, C(hosts) and C(problems).
  returned: when not in check mode
  type: dict
decisions:
  description: The decisions taken by flag and recorded (C(what), C(detail)).
  returned: when not in check mode
  type: list
  elements: dict
stopped_after:
  description: With O(until), the step after which this run stopped (the rest wait for the next run); null otherwise.
  returned: when not in check mode
  type: str
summary:
  description: rehost's summary of the run.
  returned: when not in check mode
  type: str
journal_head:
  description: The journal's head after the run (C(head), C(records), C(signed), C(verify)).
  returned: when not in check mode
  type: dict
status:
  description: C(rehost status --json) of the run after this task (before it, in check mode).
  returned: always
  type: dict
run_finished:
  description: Whether the whole run is finished (every step done); not C(finished), which an async task's status uses.
  returned: always
  type: bool
findings:
  description:
    - On failure, C(source) C(step) for each step that did not end done, C(rollback) for each
      rollback command, C(preflight) for each pre-flight problem, C(lint) and C(error) from the
      plan's check, C(rehost) for rehost's error lines.
  returned: always
  type: list
  elements: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rehost.migrate.plugins.module_utils.rehost import (
    FINDINGS, OK, TROUBLE, PlanFile, Rehost, check_findings, common_argument_spec, error_line,
    json_lines, plan_options_spec, state_args, tail)
from ansible_collections.rehost.migrate.plugins.module_utils.runs import (
    failure_findings, fold, status, step_lines, to_run)
from ansible_collections.rehost.migrate.plugins.module_utils.plan_file import (
    seconds_until, window)


def main():
    spec = common_argument_spec()
    spec.update(plan_options_spec())
    spec.update(
        env=dict(type='str'),
        state_dir=dict(type='path'),
        until=dict(type='str'),
        accept_findings=dict(type='bool', default=False),
        accept_plan_change=dict(type='bool', default=False),
        ignore_window=dict(type='bool', default=False),
        window_wait=dict(type='int', default=0),
        retry_interrupted=dict(type='bool', default=False),
        skip_interrupted=dict(type='bool', default=False),
        confirm_manual=dict(type='bool', default=False),
        confirm_as=dict(type='str'),
        ssh_config=dict(type='path'),
        sign_key=dict(type='path', no_log=False),
        hmac_key=dict(type='path', no_log=False),
    )
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        mutually_exclusive=[('retry_interrupted', 'skip_interrupted'), ('plan', 'content')],
        required_one_of=[('plan', 'content')],
        required_by=dict(content='state_dir'),
    )
    with PlanFile(module) as plan:
        run(module, plan)


def run(module, plan):
    p = module.params
    rehost = Rehost(module)
    shown = p['plan'] or 'the plan given as content'

    # The plan as rehost reads it: errors stop here, before any state is opened.
    rc, checked, err = rehost.document(['check', plan, '--json'], allowed=(OK, FINDINGS, TROUBLE))
    findings = check_findings(checked)
    errors = [f for f in findings if f['source'] == 'error']
    if rc == TROUBLE and not errors:
        rehost.fail_trouble(rc, err, ['check', plan, '--json'], doc=checked, findings=findings)
    if errors:
        module.fail_json(msg='the plan %s has %d error(s); nothing ran' % (shown, len(errors)),
                         findings=findings, changed=False)
    lint = [f for f in findings if f['source'] == 'lint']
    if lint and not p['env'] and not p['accept_findings']:
        module.fail_json(
            msg='the plan %s has %d M 2.319 finding(s) (%s); a production run needs them fixed '
                'or accept_findings (recorded); nothing ran' % (
                    shown, len(lint), ', '.join(f.get('code', '?') for f in lint)),
            findings=findings, changed=False)

    before = status(rehost, p, plan)
    ids = [s.get('id') for s in before.get('steps') or []]
    if p['until'] is not None and p['until'] not in ids:
        module.fail_json(msg='until names no step of the plan: %s (steps: %s); nothing ran' % (
            p['until'], ', '.join(ids)), findings=[], changed=False)
    would = to_run(before, p['until'])
    result = dict(would_run=would, findings=[])

    if module.check_mode:
        after = dict(before)
        after['steps'] = [dict(s, status='done') if s.get('id') in would else s
                          for s in before.get('steps') or []]
        result.update(changed=bool(would), status=before,
                      run_finished=finished(before) and not would)
        if module._diff:
            result['diff'] = dict(before=step_lines(before), after=step_lines(after),
                                  before_header=shown, after_header=shown)
        module.exit_json(**result)

    if would:
        wait_for_window(module, p, plan)

    args = ['run', plan, '--json'] + state_args(p)
    for flag in ('accept_findings', 'accept_plan_change', 'ignore_window', 'retry_interrupted',
                 'skip_interrupted'):
        if p[flag]:
            args.append('--' + flag.replace('_', '-'))
    if p['confirm_manual']:
        args.append('--yes')
    for option in ('until', 'confirm_as', 'ssh_config', 'sign_key', 'hmac_key'):
        if p[option]:
            args += ['--' + option.replace('_', '-'), p[option]]
    rc, out, err, argv = rehost.run(args)
    events, other = json_lines(out)
    folded = fold(events)
    changed = folded.pop('started') > 0 or bool(folded['rollback'])
    after = status(rehost, p, plan)
    result.update(folded)
    result.update(changed=changed, status=after, run_finished=finished(after), rc=rc, cmd=argv)
    if module._diff:
        result['diff'] = dict(before=step_lines(before), after=step_lines(after),
                              before_header=shown, after_header=shown)
    if rc == OK:
        module.exit_json(**result)

    result['findings'] = failure_findings(folded) + [
        dict(source='rehost', message=line) for line in tail(err)]
    module.fail_json(msg=failure_message(shown, rc, folded, err), **result)


def finished(doc):
    """Whether every step of the run is done (or skipped)."""
    steps = doc.get('steps') or []
    return bool(steps) and all(s.get('status') in ('done', 'skipped') for s in steps)


def failure_message(plan, rc, folded, err):
    """One line: which step failed and why, what was rolled back, or rehost's own error."""
    failed = [s for s in folded['steps_run'] if s.get('result') != 'done']
    parts = []
    if failed:
        s = failed[-1]
        parts.append('step `%s` %s: %s' % (s['id'], s['result'], s.get('detail') or ''))
    rollback = folded.get('rollback')
    if rollback:
        done = rollback['rolled_back']
        bad = [r['id'] for r in done if not r.get('ok')]
        parts.append('rolled back by the plan: %s%s' % (
            ', '.join(r['id'] for r in done) or 'nothing to undo',
            '; rollback FAILED for %s' % ', '.join(bad) if bad else ''))
    problems = (folded.get('preflight') or {}).get('problems') or []
    if problems:
        parts.append('pre-flight: %s' % '; '.join(problems))
    if not parts:
        parts.append(error_line(err, rc))
    return 'rehost run %s failed (exit %s): %s' % (plan, rc, ' | '.join(parts))


def wait_for_window(module, p, plan):
    """Waits for the plan's window to open, up to ``window_wait`` seconds; fails without
    running when it opens later. A window that has closed is left to rehost, which refuses
    the steps that need it (unless ``ignore_window``)."""
    if p['ignore_window'] or p['window_wait'] <= 0:
        return
    found = window(plan, p['env'])
    if not found:
        return
    left = seconds_until(found['start'])
    if left <= 0:
        return
    if left > p['window_wait']:
        module.fail_json(
            msg='the window of %s opens at %s, in %d s, beyond window_wait (%d s); nothing ran' % (
                p['plan'] or 'the plan', found['start'], left, p['window_wait']),
            findings=[dict(source='window', message='window %s to %s not open yet' % (
                found['start'], found['end']))],
            window=found, changed=False)
    time.sleep(left)


if __name__ == '__main__':
    main()
