# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of catmaid.replication.pg_basebackup's command step, with the command seam replaced.

The real behaviour (real clusters, real pg_basebackup) is covered by
tests/functional/test_pg_basebackup.py; here only what a real server cannot easily show:
the passfile's life cycle and the retry when a slot to create already exists (servers
older than 15 cannot be asked beforehand).
"""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

from ansible_collections.catmaid.replication.plugins.modules import pg_basebackup

SECRET = 'pa:ss\\word'


class Failed(Exception):
    pass


class FakeModule:
    """The parts of AnsibleModule the module uses; run_command is the replaced seam."""

    def __init__(self, tmp_path, responses: list[tuple[int, str, str]], **params: Any):
        self.params: dict[str, Any] = dict(
            data_dir=str(tmp_path / 'main'), host='db1', port=5432, user='rep', password=SECRET,
            sslmode='require', sslrootcert=None, slot=None, create_slot=False, checkpoint='fast',
            max_rate=None, force=False, backup_dir=None, owner=None, timeout=3600, connect_timeout=10,
            application_name=None, pg_bin_dir=None, channel_binding='auto')
        self.params.update(params)
        self.tmpdir = str(tmp_path / 'ansible-tmp')
        os.mkdir(self.tmpdir)
        self.check_mode = False
        self.responses = responses
        self.calls: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def run_command(self, argv, environ_update=None, check_rc=False):
        call: dict[str, Any] = dict(argv=list(argv), env=dict(environ_update or {}))
        passfile = call['env'].get('PGPASSFILE')
        if passfile:
            call['passfile_mode'] = stat.S_IMODE(os.stat(passfile).st_mode)
            with open(passfile, encoding='utf-8') as handle:
                call['passfile'] = handle.read()
        self.calls.append(call)
        target = argv[argv.index('-D') + 1]
        with open(os.path.join(target, 'PG_VERSION'), 'w', encoding='ascii') as handle:
            handle.write('15\n')
        return self.responses.pop(0)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return f'/usr/bin/{name}'

    def fail_json(self, **result):
        raise Failed(result)

    def warn(self, text):
        self.warnings.append(text)


def _cloner(tmp_path, responses, **params):
    module = FakeModule(tmp_path, responses, **params)
    cloner = pg_basebackup.Cloner(module)
    # pg_basebackup itself runs through _run_tied (tied to the module's life): the same seam here.
    cloner._run_tied = lambda argv, env=None: module.run_command(argv, environ_update=env)
    target = tmp_path / '.main.clone-abc'
    target.mkdir(mode=0o700)
    return module, cloner, str(target)


def test_passfile_is_private_escaped_and_removed_on_success(tmp_path):
    module, cloner, target = _cloner(tmp_path, [(0, '', '')])
    cloner.run_basebackup('/usr/lib/postgresql/15/bin/pg_basebackup', target)
    call = module.calls[0]
    assert call['passfile_mode'] == 0o600
    assert call['passfile'] == '*:*:*:rep:pa\\:ss\\\\word\n'
    assert not os.path.exists(call['env']['PGPASSFILE'])
    assert all(SECRET not in arg for arg in call['argv'])
    assert call['argv'][:4] == ['/usr/bin/timeout', '-s', 'TERM', '-k']
    assert cloner.result['cmd'][0] == '/usr/lib/postgresql/15/bin/pg_basebackup'
    assert SECRET not in repr(cloner.result)


def test_failure_removes_passfile_and_temp_dir_and_reports(tmp_path):
    module, cloner, target = _cloner(tmp_path, [(1, '', 'pg_basebackup: error: could not write: No space left on device')])
    with pytest.raises(Failed) as exc:
        cloner.run_basebackup('/usr/lib/postgresql/15/bin/pg_basebackup', target)
    result = exc.value.args[0]
    assert 'pg_basebackup failed (rc=1)' in result['msg'] and 'No space left on device' in result['msg']
    assert result['rc'] == 1 and 'No space left' in result['stderr']
    assert result['cmd'] and SECRET not in repr(result)
    assert not os.path.exists(target)
    assert not os.path.exists(module.calls[0]['env']['PGPASSFILE'])


def test_timeout_is_named(tmp_path):
    module, cloner, target = _cloner(tmp_path, [(124, '', 'Terminated')], timeout=5)
    with pytest.raises(Failed) as exc:
        cloner.run_basebackup('pg_basebackup', target)
    assert 'did not finish within timeout=5 seconds' in exc.value.args[0]['msg']
    assert module.calls[0]['argv'][5] == '5'


def test_existing_slot_is_reused_when_creation_fails(tmp_path):
    exists = 'pg_basebackup: error: ... ERROR:  replication slot "s1" already exists'
    module, cloner, target = _cloner(tmp_path, [(1, '', exists), (0, '', '')], slot='s1', create_slot=True)
    cloner.run_basebackup('pg_basebackup', target)
    first, second = (c['argv'] for c in module.calls)
    assert first[-3:] == ['-C', '-S', 's1']
    assert second[-2:] == ['-S', 's1'] and '-C' not in second
    assert cloner.result['slot_created'] is False
    assert cloner.result['cmd'] == second[6:]


def test_known_existing_slot_is_not_created(tmp_path):
    module, cloner, target = _cloner(tmp_path, [(0, '', '')], slot='s1', create_slot=True)
    cloner.slot_exists = True
    cloner.run_basebackup('pg_basebackup', target)
    assert '-C' not in module.calls[0]['argv']
    assert cloner.result['slot_created'] is False


def test_no_password_means_no_passfile(tmp_path):
    module, cloner, target = _cloner(tmp_path, [(0, '', '')], password=None)
    cloner.run_basebackup('pg_basebackup', target)
    assert 'PGPASSFILE' not in module.calls[0]['env']
    assert os.listdir(module.tmpdir) == []


def test_swap_replaces_and_removes_the_old_directory(tmp_path):
    module, cloner, target = _cloner(tmp_path, [])
    old = tmp_path / 'main'
    old.mkdir()
    (old / 'PG_VERSION').write_text('13\n')
    new = tmp_path / '.main.clone-abc'
    (new / 'PG_VERSION').write_text('15\n')
    cloner.swap(target)
    assert (old / 'PG_VERSION').read_text() == '15\n'
    assert sorted(os.listdir(tmp_path)) == ['ansible-tmp', 'main']
