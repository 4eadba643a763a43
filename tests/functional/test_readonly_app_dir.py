# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catmaid_readonly: the directory of the role's Django app is refused when someone other than root could
put code there (reviews 14 N9 and 15 R4). CATMAID imports the app, and Django its ``models`` module, as the
web server user, who holds SECRET_KEY and the database's password. The role's own tasks (read from
roles/catmaid_readonly/tasks/main.yml by name) run with ansible-playbook on this host against a scratch
directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / 'roles' / 'catmaid_readonly'
TASKS = ("Read the directory of the role's Django app", 'List what the app directory holds', 'Refuse an app directory')


def run(tmp_path: Path, app_dir: Path) -> subprocess.CompletedProcess:
    tasks = [t for t in yaml.safe_load((ROLE / 'tasks' / 'main.yml').read_text()) if t.get('name', '').startswith(TASKS)]
    assert len(tasks) == 3
    play = [{'hosts': 'localhost', 'gather_facts': False, 'vars': {'__catmaid_readonly_app_dir': str(app_dir)}, 'tasks': tasks}]
    playbook = tmp_path / 'play.yml'
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='false', ANSIBLE_INVENTORY_UNPARSED_WARNING='false',
               ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', ANSIBLE_NOCOLOR='1')
    return subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                           str(playbook)], capture_output=True, text=True, env=env, check=False)


def install(lib: Path) -> Path:
    package = lib / 'catmaid-readonly' / 'catmaid_readonly_lastlogin'
    package.mkdir(parents=True)
    for name in ('__init__.py', 'apps.py'):
        shutil.copy(ROLE / 'files' / 'catmaid_readonly_lastlogin' / name, package / name)
    for path in (lib, lib / 'catmaid-readonly', package):
        path.chmod(0o755)
    return package


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root (files of other owners)')
@pytest.mark.parametrize('case', ['missing', 'clean', 'pycache', 'foreign module', 'package of another user',
                                  'writable app directory', 'file of another user', 'symbolic link',
                                  'module beside the package', 'group-writable file', 'linked file'])
def test_only_roots_own_app_directory_passes(tmp_path: Path, case: str) -> None:
    lib = tmp_path / 'lib'
    lib.mkdir()
    lib.chmod(0o755)
    app_dir = lib / 'catmaid-readonly'
    if case != 'missing':
        package = install(lib)
    if case == 'pycache':
        (package / '__pycache__').mkdir(mode=0o755)
        (package / '__pycache__' / 'apps.cpython-311.pyc').write_bytes(b'')
    elif case == 'foreign module':
        (package / 'models.py').write_text("print('planted')\n")
    elif case == 'package of another user':
        os.chown(package, 65534, -1)
    elif case == 'writable app directory':
        app_dir.chmod(0o777)
    elif case == 'file of another user':
        os.chown(package / 'apps.py', 65534, -1)
    elif case == 'module beside the package':          # the app directory is on sys.path: IPython.py is imported
        (app_dir / 'IPython.py').write_text("print('planted')\n")
    elif case == 'group-writable file':
        (package / 'apps.py').chmod(0o664)
    elif case == 'linked file':
        (package / 'apps.py').unlink()
        (package / 'apps.py').symlink_to(tmp_path / 'elsewhere.py')
    elif case == 'symbolic link':
        target = tmp_path / 'elsewhere'
        shutil.move(str(app_dir), str(target))
        app_dir.symlink_to(target)
    res = run(tmp_path, app_dir)
    if case in ('missing', 'clean', 'pycache'):
        assert res.returncode == 0, res.stdout + res.stderr
    else:
        assert res.returncode != 0 and f'{app_dir} must be root' in res.stdout, res.stdout + res.stderr
        assert 'Nothing was changed for the app' in res.stdout
        if case in ('foreign module', 'module beside the package', 'group-writable file', 'file of another user', 'linked file'):
            assert "holds what is not the role's" in res.stdout, res.stdout
