# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catmaid_readonly role's templates, rendered by ansible's own Templar with the role's
defaults and vars, for every option combination: the settings fragment is valid Python that,
run the way the README tells (exec at the end of settings.py), sets what the guide asks for;
and (issue 18 item 2) no value of any variable that reaches it can add a statement to it."""

from __future__ import annotations

import ast
import itertools
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = Path(__file__).resolve().parents[3] / 'roles' / 'catmaid_readonly'
MANAGED = 'Ansible managed: do not edit'


def _trusted(value: Any) -> Any:
    """Role files are trusted templates in a real run; mark them so here too."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def role_templar(**overrides: Any) -> Templar:
    """A Templar with the role's defaults and vars, as a play has them, and ``overrides``."""
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for part in ('defaults', 'vars'):
        variables.update(_trusted(loader.load_from_file(str(ROLE / part / 'main.yml'))))
    variables['ansible_managed'] = MANAGED
    variables.update(overrides)
    return Templar(loader=loader, variables=variables)


def render(template: str, **overrides: Any) -> str:
    source = trust_as_template((ROLE / 'templates' / template).read_text(encoding='utf-8'))
    return role_templar(**overrides).template(source, escape_backslashes=False)


def run_fragment(text: str, installed_apps: Any) -> dict[str, Any]:
    """Execute the fragment like settings.py does: in a namespace that already has INSTALLED_APPS."""
    namespace: dict[str, Any] = {'INSTALLED_APPS': installed_apps}
    saved = list(sys.path)
    try:
        exec(compile(text, 'readonly_settings.py', 'exec'), namespace)  # pylint: disable=exec-used
        namespace['__sys_path_added'] = [p for p in sys.path if p not in saved]
    finally:
        sys.path[:] = saved
    return namespace


APP = 'catmaid_readonly_lastlogin.apps.NoLastLoginConfig'
APP_DIR = '/usr/local/lib/catmaid-readonly'
VERSIONS = ['3.2', '3.2.25', '4.0.10', '4.1', '4.2.16', '5.1']
BACKENDS = ['cache', 'file']
SOCKETS = ['/run/catmaid-memcached/memcached.sock', '/run/other/m.sock']
SIZES = [1, 10, 512]


@pytest.mark.parametrize('version,backend,socket,size', list(itertools.product(VERSIONS, BACKENDS, SOCKETS, SIZES)))
def test_fragment_is_python_with_the_guides_settings(version, backend, socket, size):
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version=version,
                  catmaid_readonly_session_backend=backend, catmaid_readonly_memcached_socket=socket,
                  catmaid_readonly_cache_max_value_mb=size, catmaid_readonly_session_file_path="/srv/cat maid/it's here")
    ast.parse(text)
    assert text.startswith('#') and MANAGED in text.splitlines()[1]

    ns = run_fragment(text, ('django.contrib.auth', 'catmaid'))
    assert ns['EMAIL_BACKEND'] == 'django.core.mail.backends.dummy.EmailBackend'
    cache = ns['CACHES']['default']
    assert cache['LOCATION'] == f'unix:{socket}'
    new = tuple(int(p) for p in version.split('.')[:2]) >= (4, 1)
    if new:
        assert cache['BACKEND'] == 'django.core.cache.backends.memcached.PyMemcacheCache'
        assert 'server_max_value_length' not in cache['OPTIONS']
        assert cache['OPTIONS']['ignore_exc'] is True
        # Issue 18 item 3: no pool limit unless one is asked for (pymemcache's default: unbounded).
        assert 'max_pool_size' not in cache['OPTIONS']
    else:
        assert cache['BACKEND'] == 'django.core.cache.backends.memcached.MemcachedCache'
        assert cache['OPTIONS'] == {'server_max_value_length': size * 1024 * 1024}
    if backend == 'file':
        assert ns['SESSION_ENGINE'] == 'django.contrib.sessions.backends.file'
        assert ns['SESSION_FILE_PATH'] == "/srv/cat maid/it's here"
    else:
        assert ns['SESSION_ENGINE'] == 'django.contrib.sessions.backends.cache'
        assert 'SESSION_FILE_PATH' not in ns
    assert ns['INSTALLED_APPS'] == ('django.contrib.auth', 'catmaid', APP)
    assert ns['__sys_path_added'] == [APP_DIR]
    assert ns['NO_UPDATE_LAST_LOGIN'] is True


@pytest.mark.parametrize('apps', [('a',), ['a'], ('a', APP)])
def test_fragment_extends_tuple_or_list_once_even_when_run_twice(apps):
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='4.2')
    ns = run_fragment(text, apps)
    again = run_fragment(text, ns['INSTALLED_APPS'])
    assert type(again['INSTALLED_APPS']) is type(apps)
    assert list(again['INSTALLED_APPS']).count(APP) == 1
    assert 'nolastlogin' not in again['INSTALLED_APPS']
    assert list(again['INSTALLED_APPS'])[0] == 'a'


def test_fragment_documents_its_include_line_with_the_real_path():
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='4.2',
                  catmaid_readonly_settings_path='/opt/catmaid/replica.py')
    assert 'with open("/opt/catmaid/replica.py", encoding=\'utf-8\')' in text
    assert "exec(compile(" in text


@pytest.mark.parametrize('pool', [1, 64])
def test_a_pool_limit_is_written_only_when_asked_for(pool):
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='4.2', catmaid_readonly_cache_max_pool_size=pool)
    assert run_fragment(text, ())['CACHES']['default']['OPTIONS']['max_pool_size'] == pool


@pytest.mark.parametrize('options, expected', [
    (None, '-c statement_timeout=300000'),
    ({}, '-c statement_timeout=300000'),
    ({'options': '-c application_name=catmaid-replica'}, '-c application_name=catmaid-replica -c statement_timeout=300000'),
])
def test_a_statement_timeout_goes_into_this_instances_connection_options_only(options, expected):
    """Review 14 N11: the replica's CATMAID bounds its own queries; its other connection options stay."""
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='3.2', catmaid_readonly_statement_timeout=300000)
    default = {'ENGINE': 'django.contrib.gis.db.backends.postgis', 'NAME': 'catmaid'}
    if options is not None:
        default['OPTIONS'] = options
    namespace = {'INSTALLED_APPS': ('a',), 'DATABASES': {'default': default}}
    saved = list(sys.path)
    try:
        exec(compile(text, 'readonly_settings.py', 'exec'), namespace)  # pylint: disable=exec-used
    finally:
        sys.path[:] = saved
    assert namespace['DATABASES']['default']['OPTIONS']['options'] == expected
    assert namespace['DATABASES']['default']['NAME'] == 'catmaid' and '_catmaid_readonly_db' not in namespace
    # Without a limit the fragment does not touch DATABASES (it need not even exist).
    plain = render('readonly_settings.py.j2', catmaid_readonly_django_version='3.2')
    assert 'DATABASES' not in plain.split('NO_UPDATE_LAST_LOGIN = True', 1)[1]


@pytest.mark.parametrize('socket,size,memory', [('/run/catmaid-memcached/memcached.sock', 10, 64),
                                                ('/run/x/m.sock', 1, 2), ('/run/y/z.sock', 512, 1024)])
def test_memcached_conf_listens_on_the_socket_only_with_the_item_limit_of_the_cache(socket, size, memory):
    text = render('memcached.conf.j2', catmaid_readonly_memcached_socket=socket,
                  catmaid_readonly_cache_max_value_mb=size, catmaid_readonly_memcached_memory_mb=memory)
    options = [line for line in text.splitlines() if line and not line.startswith('#')]
    assert f'-s {socket}' in options and '-a 0660' in options
    assert f'-I {size}m' in options
    assert f'-m {memory}' in options
    assert '-U 0' in options
    assert not [o for o in options if o.split()[0] in ('-l', '-p', '--listen', '--port')]


def test_tmpfiles_creates_the_socket_directory_for_memcached_and_the_web_group_only():
    text = render('tmpfiles.conf.j2', catmaid_readonly_memcached_socket='/run/cm/memcached.sock',
                  catmaid_readonly_web_group='catmaid')
    lines = [line for line in text.splitlines() if line and not line.startswith('#')]
    assert lines == ['d /run/cm 2710 memcache catmaid -']


# Issue 18 item 2: every variable that reaches the fragment, with values that try to end a
# string or a comment and start a statement of their own (newline, carriage return, form feed,
# Unicode line separators, quotes and backslashes, a NUL, a template).
HOSTILE = [
    "4.2\nimport os; os.system('id')\n#",
    "4.2\rimport os; os.system('id')\r#",
    "4.2\r\nimport os\r\n#",
    "x'; import os; os.system('id'); y='",
    'x"; import os; os.system("id"); y="',
    "x'''; import os #",
    'x\\',
    '\\\nimport os',
    "\u2028import os\u2029import sys\x85import re\x0cimport io\x0bimport abc",
    "a\x00b",
    "{{ lookup('pipe', 'id') }}",
]
STRING_VARIABLES = ['catmaid_readonly_django_version', 'catmaid_readonly_settings_path',
                    'catmaid_readonly_session_file_path', 'catmaid_readonly_memcached_socket', 'ansible_managed']
NUMBER_VARIABLES = ['catmaid_readonly_cache_max_value_mb', 'catmaid_readonly_cache_max_pool_size',
                    'catmaid_readonly_statement_timeout']


def _shape(text: str) -> str:
    """The fragment's syntax tree with every literal value blanked: what it does, not with what."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = None
    return ast.dump(tree)


@pytest.mark.parametrize('pymemcache', [True, False])
@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('value', HOSTILE)
@pytest.mark.parametrize('variable', STRING_VARIABLES + NUMBER_VARIABLES)
def test_no_value_of_any_variable_adds_a_statement_to_the_fragment(variable, value, backend, pymemcache):
    """Rendered with a hostile value, the fragment parses to the very same statements as with a
    harmless one (only literals differ), and running it imports and runs nothing of the value."""
    base = {'catmaid_readonly_django_version': '4.2', 'catmaid_readonly_session_backend': backend,
            '__catmaid_readonly_pymemcache': pymemcache}
    if variable in NUMBER_VARIABLES:
        value = '10' + value            # what a careless -e could give; rendered as a number
    expected = _shape(render('readonly_settings.py.j2', **base))
    text = render('readonly_settings.py.j2', **dict(base, **{variable: value}))
    assert _shape(text) == expected, text
    before = set(sys.modules)
    ns = run_fragment(text, ('a',))
    assert set(sys.modules) == before
    if variable == 'catmaid_readonly_session_file_path' and backend == 'file':
        assert ns['SESSION_FILE_PATH'] == value
    if variable == 'catmaid_readonly_memcached_socket':
        assert ns['CACHES']['default']['LOCATION'] == 'unix:' + value


# -- the role's last_login app and the CORS files (issue 15) --------------------------------

def test_the_app_the_fragment_names_is_the_one_the_role_installs():
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='3.2')
    ns = run_fragment(text, ('django.contrib.auth',))
    package = ROLE / 'files' / 'catmaid_readonly_lastlogin'
    module, cls = APP.rsplit('.', 1)
    assert ns['__sys_path_added'] == [APP_DIR] and module.split('.')[0] == package.name
    tree = ast.parse((package / 'apps.py').read_text())
    config = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls]
    assert config, f'{cls} missing from {package}/apps.py'
    source = ast.unparse(config[0])
    assert "dispatch_uid='update_last_login'" in source and "name = 'catmaid_readonly_lastlogin'" in source
    tasks = (ROLE / 'tasks' / 'main.yml').read_text()
    assert 'src: catmaid_readonly_lastlogin' in tasks and 'dest: "{{ __catmaid_readonly_app_dir }}/"' in tasks
    assert render_value('{{ __catmaid_readonly_app_dir }}') == APP_DIR


def _origin_ok(value: Any) -> bool:
    import re  # pylint: disable=import-outside-toplevel
    pattern = render_value('{{ __catmaid_readonly_origin_pattern }}')
    return isinstance(value, str) and re.match(pattern, value) is not None


def render_value(expression: str, **overrides: Any) -> str:
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for part in ('defaults', 'vars'):
        variables.update(_trusted(loader.load_from_file(str(ROLE / part / 'main.yml'))))
    variables.update(overrides)
    return Templar(loader=loader, variables=variables).template(trust_as_template(expression))


@pytest.mark.parametrize('origin', ['https://catmaid.example.org', 'http://10.0.0.5:8000', 'http://[fd00::5]:8080',
                                    'https://main', 'http://catmaid-primary'])
def test_an_origin_as_browsers_send_it_is_accepted(origin):
    assert _origin_ok(origin)


@pytest.mark.parametrize('origin', ['*', 'https://catmaid.example.org/', 'https://x.org/catmaid', 'ftp://x.org',
                                    'https://x.org"; return 200 "', 'https://x.org;', 'https://x.org\n', 'https://x.org\nfoo',
                                    'https://x org', '//x.org', 'https://', 'https://-x.org', 'https://x.org:', 'null'])
def test_anything_else_is_refused_before_nginx_sees_it(origin):
    assert not _origin_ok(origin.replace('\\n', '\n'))


def test_the_maps_allow_only_the_listed_origins_and_the_snippet_uses_them():
    origins = ['https://Main.Example.org', 'http://10.0.0.5:8000', 'https://main.example.org']
    maps = render('nginx-cors-maps.conf.j2', catmaid_readonly_cors_origins=origins)
    assert maps.startswith('#') and MANAGED in maps.splitlines()[1]
    entries = [line.strip() for line in maps.split('map $http_origin $catmaid_readonly_cors_origin {', 1)[1].split('}', 1)[0].splitlines()
               if line.strip()]
    assert entries == ['default "";', '"https://main.example.org" $http_origin;', '"http://10.0.0.5:8000" $http_origin;']
    assert maps.count('{') == maps.count('}') == 5
    none = render('nginx-cors-maps.conf.j2', catmaid_readonly_cors_origins=[])
    assert 'default "";\n}' in none and '$http_origin;' not in none
    snippet = render('nginx-cors.conf.j2')
    for header, variable in [('Access-Control-Allow-Origin', 'origin'), ('Access-Control-Allow-Methods', 'methods'),
                             ('Access-Control-Allow-Headers', 'headers'), ('Access-Control-Max-Age', 'max_age')]:
        assert f'add_header {header} $catmaid_readonly_cors_{variable} always;' in snippet
        assert f'$catmaid_readonly_cors_{variable} ' in maps
    assert 'X-Authorization' in maps and 'if ($catmaid_readonly_cors_preflight)' in snippet and 'return 204;' in snippet


def client_package(version: str) -> str:
    return role_templar(catmaid_readonly_django_version=version).template(trust_as_template('{{ __catmaid_readonly_client_package }}'))


@pytest.mark.parametrize('version,package', [('3.2', 'python-memcached<1.60'), ('3.2.18', 'python-memcached<1.60'),
                                             ('4.0.10', 'python-memcached<1.60'), ('4.1', 'pymemcache'),
                                             ('5.1', 'pymemcache')])
def test_client_package_suits_the_backend(version, package):
    """python-memcached 1.60+ has no Client._deletetouch, which MemcachedCache.delete() of Django 3.2
    and 4.0 calls (every login on a real CATMAID 3.2 replica failed): the role installs an older one."""
    assert client_package(version) == package
