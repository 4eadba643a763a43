# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe script of catmaid.replication.catmaid_replication (``__catmaid_replication_probe_script``) run by a real ``sh`` against stand-in
``pg_lsclusters``, ``dpkg-query`` and ``apt-cache``, and its output read by the filter
``catmaid.replication.pg_host_probe``, as the entry point ``plan`` does on a host."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.catmaid.replication.plugins.filter.pg_host_probe import pg_host_probe

REPO = Path(__file__).resolve().parents[3]
SCRIPT = yaml.safe_load((REPO / 'roles/catmaid_replication/vars/main.yml').read_text())['__catmaid_replication_probe_script']
LSCLUSTERS = ('15  main    5432 online postgres /var/lib/postgresql/15/main /var/log/postgresql/postgresql-15-main.log\n'
              '13  old     5433 down   postgres /var/lib/postgresql/13/old  /var/log/postgresql/postgresql-13-old.log\n')
# What this machine has: the probe always looks at the real /usr/lib/postgresql.
BINARY_MAJORS = sorted(int(p.split('/')[4]) for p in glob.glob('/usr/lib/postgresql/*/bin/postgres') if os.path.isfile(p))


def stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH with sed and the stand-ins only (no real pg_lsclusters, dpkg-query or apt-cache)."""
    d = tmp_path / 'bin'
    d.mkdir()
    os.symlink(shutil.which('sed'), d / 'sed')
    stand_in(d, 'dpkg-query', 'echo "$*" >> "${0%/*}/dpkg.args"\n'
             'for p in "$@"; do case "$p" in postgresql*) printf "%s ii |" "$p";; esac; done\n')
    stand_in(d, 'apt-cache', 'echo called > "${0%/*}/apt.called"\n'
             'printf "Package: postgresql\\nVersion: 15+248\\nDepends: postgresql-15\\nSection: database\\n"\n')
    return d


def probe(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['/bin/sh', '-c', SCRIPT, 'probe', *args], env={'PATH': str(bin_dir)},
                          capture_output=True, text=True, check=False)


def test_reads_clusters_binaries_packages_and_apt_in_one_run(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', f'[ "$1" = --no-header ] || exit 9\nprintf "%s" "{LSCLUSTERS}"\n')
    res = probe(bin_dir, 'main', 'yes', 'postgresql', 'postgresql-common', 'nginx')
    assert res.returncode == 0, res.stderr
    kinds = [line.split()[0] for line in res.stdout.splitlines()]
    assert kinds.count('cluster') == 2 and kinds.count('packages') == 1 and kinds.count('candidate') == 1
    assert kinds.count('binary') == len(BINARY_MAJORS)
    got = pg_host_probe(res.stdout, 'main', '', ['postgresql', 'postgresql-common', 'nginx'])
    assert got['major'] == '15' and got['why'] == 'cluster' and got['candidate'] == '15'
    assert got['cluster']['data_dir'] == '/var/lib/postgresql/15/main' and got['cluster']['running'] is True
    assert got['missing'] == ['nginx']
    assert got['majors'] == BINARY_MAJORS
    assert (bin_dir / 'dpkg.args').read_text() == (
        '--show --showformat=${Package} ${db:Status-Abbrev}| postgresql postgresql-common nginx\n')


def test_fresh_host_without_postgresql_common(bin_dir):
    res = probe(bin_dir, 'main', 'yes', 'postgresql')
    assert res.returncode == 0, res.stderr
    assert not [line for line in res.stdout.splitlines() if line.startswith('cluster')]
    got = pg_host_probe(res.stdout, 'main', '', ['postgresql'])
    assert got['cluster'] == {} and got['clusters'] == []
    assert got['candidate'] == '15'


def test_apt_is_not_asked_when_a_version_is_given_nor_dpkg_without_packages(bin_dir):
    res = probe(bin_dir, 'main', 'no')
    assert res.returncode == 0, res.stderr
    assert not (bin_dir / 'apt.called').exists() and not (bin_dir / 'dpkg.args').exists()
    assert [line for line in res.stdout.splitlines() if not line.startswith('binary ')] == []


def test_a_failing_pg_lsclusters_fails_the_probe_instead_of_reporting_no_cluster(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', 'echo "Error: broken" >&2\nexit 1\n')
    res = probe(bin_dir, 'main', 'yes', 'postgresql')
    assert res.returncode == 3
    assert 'pg_lsclusters failed' in res.stderr


def test_blank_lines_of_pg_lsclusters_are_not_clusters(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', 'printf "\\n"\n')
    res = probe(bin_dir, 'main', 'no')
    assert res.returncode == 0 and 'cluster' not in res.stdout
