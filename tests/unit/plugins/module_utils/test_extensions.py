# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the extension check (module_utils/_extensions.py)."""

from __future__ import annotations

from ansible_collections.catmaid.replication.plugins.module_utils import _extensions as ext

LIB = '/usr/lib/postgresql/13/lib'


def test_library_candidates_follow_postgresql():
    assert ext.library_candidates('$libdir/postgis-3', LIB) == [f'{LIB}/postgis-3', f'{LIB}/postgis-3.so']
    assert ext.library_candidates('$libdir/plpgsql.so', LIB) == [f'{LIB}/plpgsql.so']
    assert ext.library_candidates('/opt/x/lib', LIB) == ['/opt/x/lib', '/opt/x/lib.so']


def test_dpkg_search_output_is_read_per_path():
    out = ('postgresql-13-postgis-3: /usr/lib/postgresql/13/lib/postgis-3.so\n'
           'postgresql-13-postgis-3-scripts: /usr/share/postgresql/13/extension/postgis.control\n'
           'diversion by foo from: /usr/bin/x\n'
           'libc6:amd64, libc6-dev:amd64: /usr/lib/x86_64-linux-gnu/y\n\n')
    assert ext.parse_dpkg_search(out) == {
        '/usr/lib/postgresql/13/lib/postgis-3.so': 'postgresql-13-postgis-3',
        '/usr/share/postgresql/13/extension/postgis.control': 'postgresql-13-postgis-3-scripts',
        '/usr/lib/x86_64-linux-gnu/y': 'libc6, libc6-dev'}


def postgis(available=True, found=True):
    return {'database': 'catmaid', 'name': 'postgis', 'version': '3.1.1', 'available': available,
            'control_file': '/usr/share/postgresql/13/extension/postgis.control',
            'libraries': [{'library': '$libdir/postgis-3', 'found': found, 'path': f'{LIB}/postgis-3.so' if found else None,
                           'paths': [f'{LIB}/postgis-3', f'{LIB}/postgis-3.so'], 'why': '' if found is not None else 'no privilege'}]}


PACKAGES = {f'{LIB}/postgis-3.so': 'postgresql-13-postgis-3',
            '/usr/share/postgresql/13/extension/postgis.control': 'postgresql-13-postgis-3-scripts'}


def test_a_loadable_extension_is_no_problem():
    assert ext.problems([postgis()], PACKAGES, 'standby') == []


def test_a_replica_without_postgis_is_told_both_packages():
    [line] = ext.problems([postgis(available=False, found=False)], PACKAGES, 'standby')
    assert line.startswith('standby: extension postgis 3.1.1 of database catmaid cannot be loaded here')
    assert 'the control file of version 3.1.1' in line and 'the library $libdir/postgis-3' in line
    assert 'install postgresql-13-postgis-3, postgresql-13-postgis-3-scripts here' in line


def test_an_unknown_library_is_a_problem_and_says_why():
    [line] = ext.problems([postgis(found=None)], PACKAGES, 'primary')
    assert 'cannot tell: no privilege' in line and line.startswith('primary: ')


def test_without_a_package_map_it_says_how_to_find_the_package():
    [line] = ext.problems([postgis(found=False)], {}, 'standby')
    assert 'install the package that holds these files here (dpkg -S' in line


def test_a_database_that_could_not_be_read_is_named():
    [line] = ext.problems([{'database': 'x', 'name': None, 'version': None, 'error': 'refused'}], {}, 'standby')
    assert line == 'standby: the extensions of database x could not be read: refused'


def test_only_files_found_are_looked_up():
    assert ext.found_paths([postgis(), postgis(available=False, found=False)]) == [
        f'{LIB}/postgis-3.so', '/usr/share/postgresql/13/extension/postgis.control']
