# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe script of catmaid.replication.catmaid_replication (``__catmaid_replication_probe_script``) run by a real ``sh`` against stand-in
``pg_lsclusters``, ``dpkg-query`` and ``apt-cache`` (and against the real pg_lsclusters of postgresql-common where
it is installed), and its output read by the filter ``catmaid.replication.pg_host_probe``, as the entry point
``plan`` does on a host."""

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
# A stand-in pg_lsclusters as postgresql-common writes it: perl, JSON.pm's encode_json for --json.
LSCLUSTERS = (
    '#!/usr/bin/perl\n'
    'die "stand-in: expected --json" unless "@ARGV" eq "--json";\n'
    'require JSON;\n'
    'print JSON::encode_json([\n'
    '  {version => "15", cluster => "main", port => "5432", running => 1, owneruid => 0,\n'
    '   pgdata => "/var/lib/postgresql/15/main", logfile => "/var/log/postgresql/postgresql-15-main.log",\n'
    '   config => {primary_conninfo => "password=never-printed"}},\n'
    '  {version => "13", cluster => "old", port => "5433", running => 0, owneruid => 0,\n'
    '   pgdata => "/var/lib/postgresql/13/old"}]) . "\\n";\n'
    'exit 0;\n')
# What this machine has: the probe always looks at the real /usr/lib/postgresql.
BINARY_MAJORS = sorted(int(p.split('/')[4]) for p in glob.glob('/usr/lib/postgresql/*/bin/postgres') if os.path.isfile(p))


def stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(body if body.startswith('#!') else '#!/bin/sh\n' + body)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH with sed, perl and the stand-ins only (no real pg_lsclusters, dpkg-query or apt-cache)."""
    d = tmp_path / 'bin'
    d.mkdir()
    os.symlink(shutil.which('sed'), d / 'sed')
    os.symlink(shutil.which('perl'), d / 'perl')
    stand_in(d, 'dpkg-query', 'echo "$*" >> "${0%/*}/dpkg.args"\n'
             'for p in "$@"; do case "$p" in postgresql*) printf "%s ii |" "$p";; esac; done\n')
    stand_in(d, 'apt-cache', 'echo called > "${0%/*}/apt.called"\n'
             'printf "Package: postgresql\\nVersion: 15+248\\nDepends: postgresql-15\\nSection: database\\n"\n')
    return d


def probe(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['/bin/sh', '-c', SCRIPT, 'probe', *args], env={'PATH': str(bin_dir)},
                          capture_output=True, text=True, check=False)


def test_reads_clusters_binaries_packages_and_apt_in_one_run(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', LSCLUSTERS)
    res = probe(bin_dir, 'main', 'yes', 'postgresql', 'postgresql-common', 'nginx')
    assert res.returncode == 0, res.stderr
    kinds = [line.split()[0] for line in res.stdout.splitlines()]
    assert kinds.count('clusters') == 1 and kinds.count('packages') == 1 and kinds.count('candidate') == 1
    assert 'never-printed' not in res.stdout
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
    stand_in(bin_dir, 'pg_lsclusters', '#!/usr/bin/perl\nprint STDERR "Error: broken\\n";\nexit 1;\n')
    res = probe(bin_dir, 'main', 'yes', 'postgresql')
    assert res.returncode == 3
    assert 'pg_lsclusters failed' in res.stderr


def test_no_clusters_are_no_clusters(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', '#!/usr/bin/perl\nrequire JSON;\nprint JSON::encode_json([]) . "\\n";\nexit 0;\n')
    res = probe(bin_dir, 'main', 'no')
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == 'clusters []' and pg_host_probe(res.stdout, 'main', '', [])['clusters'] == []


def test_a_pg_lsclusters_that_prints_nothing_fails_the_probe(bin_dir):
    stand_in(bin_dir, 'pg_lsclusters', '#!/usr/bin/perl\nexit 0 if 0;\n')
    res = probe(bin_dir, 'main', 'no')
    assert res.returncode == 3 and 'pg_lsclusters ended without output' in res.stderr


# --- the real pg_lsclusters (postgresql-common) on clusters of a configuration root of our own ---------------
# PG_CLUSTER_CONF_ROOT points postgresql-common at <tmp>/etc instead of /etc/postgresql; the data
# directories are real directories under <tmp>. Ports far from 5432, so nothing running here answers.
REAL_LSCLUSTERS = shutil.which('pg_lsclusters', path='/usr/bin')
needs_postgresql_common = pytest.mark.skipif(REAL_LSCLUSTERS is None, reason='postgresql-common is not installed here')


def make_cluster(root: Path, major: str, name: str, port: int, data_dir: Path, managed: bool = False) -> None:
    conf = root / 'etc' / major / name
    (conf / 'conf.d').mkdir(parents=True)
    data_dir.mkdir(parents=True)
    (data_dir / 'PG_VERSION').write_text(major + '\n')
    (conf / 'postgresql.conf').write_text(f"data_directory = '{data_dir}'\nport = {port}\ninclude_dir = 'conf.d'\n"
                                          "primary_conninfo = 'host=db1 password=never-printed'\n")
    (conf / 'start.conf').write_text('auto\n')
    if managed:
        (conf / 'conf.d' / '40-catmaid-replication.conf').write_text('wal_level = replica\n')


def real_probe(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(['/bin/sh', '-c', SCRIPT, 'probe', *args], capture_output=True, text=True, check=False,
                          env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'PG_CLUSTER_CONF_ROOT': str(root / 'etc')})


@needs_postgresql_common
def test_a_data_directory_with_spaces_is_read_exactly(tmp_path):
    """Issue 18 item 5: the probe split pg_lsclusters' text on whitespace, so /srv/pg data/... became /srv/pg."""
    make_cluster(tmp_path, '15', 'main', 54391, tmp_path / 'srv' / 'pg data' / '15' / 'main')
    res = real_probe(tmp_path, 'main', 'no')
    assert res.returncode == 0, res.stderr
    got = pg_host_probe(res.stdout, 'main', '', [])
    assert got['cluster']['data_dir'] == str(tmp_path / 'srv' / 'pg data' / '15' / 'main')
    assert (got['cluster']['major'], got['cluster']['name'], got['cluster']['port']) == (15, 'main', 54391)
    assert got['cluster']['running'] is False and got['cluster']['start_conf'] == 'auto'
    # postgresql.conf is not passed on: it may hold a password (primary_conninfo)
    assert 'never-printed' not in res.stdout


@needs_postgresql_common
def test_two_clusters_of_the_name_and_no_version_choose_none_and_name_both(tmp_path):
    """Issue 18 item 4: 16/main in use and an empty 17/main that a newer package created: the probe chose 17."""
    make_cluster(tmp_path, '16', 'main', 54392, tmp_path / 'var' / '16' / 'main')
    make_cluster(tmp_path, '17', 'main', 54393, tmp_path / 'srv' / 'pg data' / '17' / 'main')
    res = real_probe(tmp_path, 'main', 'no')
    assert res.returncode == 0, res.stderr
    got = pg_host_probe(res.stdout, 'main', '', [])
    assert got['cluster'] == {} and got['major'] == '' and got['why'] == 'ambiguous'
    assert [(c['major'], c['port'], c['data_dir']) for c in got['ambiguous']] == [
        (16, 54392, str(tmp_path / 'var' / '16' / 'main')), (17, 54393, str(tmp_path / 'srv' / 'pg data' / '17' / 'main'))]
    # a version given chooses that cluster
    assert pg_host_probe(res.stdout, 'main', '16', [])['cluster']['port'] == 54392


@needs_postgresql_common
def test_the_cluster_holding_the_managed_settings_file_is_remembered(tmp_path):
    """Once the collection configured one of them (conf.d/40-catmaid-replication.conf), that one is managed."""
    make_cluster(tmp_path, '16', 'main', 54392, tmp_path / 'var' / '16' / 'main', managed=True)
    make_cluster(tmp_path, '17', 'main', 54393, tmp_path / 'var' / '17' / 'main')
    res = real_probe(tmp_path, 'main', 'no')
    assert res.returncode == 0, res.stderr
    got = pg_host_probe(res.stdout, 'main', '', [])
    assert (got['major'], got['why'], got['cluster']['port'], got['cluster']['managed']) == ('16', 'managed', 54392, True)
    assert got['ambiguous'] == []


def test_the_managed_file_the_probe_looks_for_is_the_one_settings_writes():
    conf_file = yaml.safe_load((REPO / 'roles/catmaid_replication/vars/main.yml').read_text())['__catmaid_replication_conf_file_name']
    assert f'"$conf/conf.d/{conf_file}"' in SCRIPT
