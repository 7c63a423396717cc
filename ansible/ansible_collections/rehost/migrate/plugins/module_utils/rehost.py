# -*- coding: utf-8 -*-
# Copyright: rehost contributors
# Apache License 2.0 (see LICENSE in the rehost repository)
"""Calling the rehost binary from a module: the command line, its JSON, findings as data.

Every module of the collection runs rehost with ``--json`` and returns what rehost printed as
structured results. rehost's exit codes follow diff(1): 0 ok, 1 findings or differences,
2 trouble, 130 interrupted. A failure returns ``findings``, a list of dicts, each with
``source`` (``lint``, ``error``, ``preflight``, ``step``, ``rollback``, ``difference``,
``rehost``) and rehost's own fields, so that a playbook can act on them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import tempfile

OK = 0
FINDINGS = 1
TROUBLE = 2
INTERRUPTED = 130

# How many lines of rehost's standard error a failure carries.
STDERR_LINES = 40


def common_argument_spec():
    """The options every module shares: where the rehost binary is."""
    return dict(
        rehost=dict(type='str', default='rehost'),
    )


def ssh_options_spec():
    """How HOST:PATH locations are reached (rehost's ``--ssh-config``, ``--plan``, ``--env``)."""
    return dict(
        ssh_config=dict(type='path'),
        plan=dict(type='path'),
        env=dict(type='str'),
    )


def ssh_args(params):
    """The ``--ssh-config``/``--plan``/``--env`` arguments from the module's options."""
    args = []
    if params.get('ssh_config'):
        args += ['--ssh-config', params['ssh_config']]
    if params.get('plan'):
        args += ['--plan', params['plan']]
    if params.get('env'):
        args += ['--env', params['env']]
    return args


def tail(text, lines=STDERR_LINES):
    """The last ``lines`` lines of ``text``, without empty ones."""
    kept = [line for line in (text or '').splitlines() if line.strip()]
    return kept[-lines:]


def error_line(err, rc):
    """rehost's own error line from its standard error (``rehost: ...`` or clap's ``error: ...``),
    else its last line."""
    lines = tail(err)
    named = [line for line in lines if line.startswith(('rehost: ', 'error: '))]
    message = (named or lines[-1:] or ['rehost exited with %s and printed nothing' % rc])[0]
    if message.startswith('rehost: '):
        message = message[len('rehost: '):]
    return message


class Rehost(object):
    """The rehost binary as one module calls it."""

    def __init__(self, module):
        self.module = module
        self.binary = self._find(module.params['rehost'])
        # rehost inherits standard input: make it /dev/null, so that a prompt (a manual step
        # without confirm_manual, the point of no return) reads the end of input and rehost
        # records the step as not confirmed (the next run asks again). Never an empty line:
        # rehost takes one as a confirmation.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)

    def _find(self, name):
        if os.sep in name:
            if not (os.path.isfile(name) and os.access(name, os.X_OK)):
                self.module.fail_json(
                    msg='the rehost binary %s is not an executable file: set the `rehost` '
                        'option to the path of rehost on the machine this task runs on' % name,
                    findings=[dict(source='rehost', message='rehost not found: %s' % name)],
                )
            return name
        found = self.module.get_bin_path(name, required=False)
        if not found:
            self.module.fail_json(
                msg='%s is not on the PATH of the machine this task runs on: install rehost '
                    '(cargo build --release -p rehost; see the rehost README) or set the '
                    '`rehost` option to its path' % name,
                findings=[dict(source='rehost', message='rehost not found on PATH: %s' % name)],
            )
        return found

    def run(self, args):
        """Runs rehost with ``args``; returns ``(rc, stdout, stderr, argv)``."""
        argv = [self.binary] + list(args)
        rc, out, err = self.module.run_command(argv, environ_update=dict(NO_COLOR='1'))
        return rc, out, err, argv

    def document(self, args, allowed=(OK, FINDINGS)):
        """Runs rehost and parses the one JSON document it prints on stdout.

        An exit code outside ``allowed``, or output that is not JSON, fails the module with
        rehost's message as a finding."""
        rc, out, err, argv = self.run(args)
        doc = None
        if out.strip():
            try:
                doc = json.loads(out)
            except ValueError:
                doc = None
        if doc is None or rc not in allowed:
            self.fail_trouble(rc, err, argv, doc=doc)
        return rc, doc, err

    def fail_trouble(self, rc, err, argv, doc=None, **extra):
        """Fails the module for exit code 2 (or anything unexpected): rehost's message, as
        data, and whatever JSON it printed."""
        lines = tail(err)
        message = error_line(err, rc)
        findings = extra.pop('findings', [])
        findings = findings + [dict(source='rehost', message=line) for line in lines]
        result = dict(msg=message, rc=rc, cmd=argv, stderr_lines=lines, findings=findings)
        if doc is not None:
            result['result'] = doc
        result.update(extra)
        self.module.fail_json(**result)


def json_lines(text):
    """The JSON objects of a JSON-lines stream (``rehost run --json``), and the lines that
    were not JSON (kept, never dropped)."""
    events, other = [], []
    for line in (text or '').splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if isinstance(value, dict):
            events.append(value)
        else:
            other.append(line)
    return events, other


def check_findings(doc):
    """The findings of ``rehost check --json``: validation errors, M 2.319 lint findings and
    pre-flight problems, each a dict with its ``source``."""
    findings = []
    for e in doc.get('errors') or []:
        item = dict(e) if isinstance(e, dict) else dict(message=str(e))
        item['source'] = 'error'
        findings.append(item)
    for f in doc.get('findings') or []:
        item = dict(f) if isinstance(f, dict) else dict(message=str(f))
        item['source'] = 'lint'
        findings.append(item)
    preflight = doc.get('preflight') or {}
    for p in preflight.get('problems') or []:
        findings.append(dict(source='preflight', message=p))
    return findings


def plan_options_spec():
    """The plan, as a file or as its text (``content``: written to a private temporary file
    for the call and removed after it, e.g. a plan rendered for check mode)."""
    return dict(
        plan=dict(type='path'),
        # The plan's text may name credentials' files and hosts: kept out of Ansible's logs.
        content=dict(type='str', no_log=True),
    )


class PlanFile(object):
    """The plan file a call reads: ``plan``, or ``content`` written to a private temporary
    directory that is removed when the call ends (``with PlanFile(module) as path:``)."""

    def __init__(self, module):
        self.module = module
        self.scratch = None

    def __enter__(self):
        p = self.module.params
        if p.get('plan'):
            return p['plan']
        self.scratch = tempfile.mkdtemp(prefix='rehost-plan-')
        path = os.path.join(self.scratch, 'plan.toml')
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(p['content'])
        return path

    def __exit__(self, *exc):
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return False


def state_args(params):
    """``--state``/``--env`` for the commands that read or write a run's state."""
    args = []
    if params.get('state_dir'):
        args += ['--state', params['state_dir']]
    if params.get('env'):
        args += ['--env', params['env']]
    return args
