# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catmaid_readonly role's templates, rendered by ansible's own Templar with the role's
defaults and vars, for every option combination: the settings fragment is valid Python that,
run the way the README tells (exec at the end of settings.py), sets what the guide asks for."""

from __future__ import annotations

import ast
import itertools
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


def render(template: str, **overrides: Any) -> str:
    loader = DataLoader()
    variables: dict[str, Any] = {}
    for part in ('defaults', 'vars'):
        variables.update(_trusted(loader.load_from_file(str(ROLE / part / 'main.yml'))))
    variables.update(overrides)
    variables['ansible_managed'] = MANAGED
    templar = Templar(loader=loader, variables=variables)
    source = trust_as_template((ROLE / 'templates' / template).read_text(encoding='utf-8'))
    return templar.template(source, escape_backslashes=False)


def run_fragment(text: str, installed_apps: Any) -> dict[str, Any]:
    """Execute the fragment like settings.py does: in a namespace that already has INSTALLED_APPS."""
    namespace: dict[str, Any] = {'INSTALLED_APPS': installed_apps}
    exec(compile(text, 'readonly_settings.py', 'exec'), namespace)  # pylint: disable=exec-used
    return namespace


VERSIONS = ['3.2', '3.2.25', '4.0.10', '4.1', '4.2.16', '5.1']
BACKENDS = ['cache', 'file']
ADDRESSES = ['127.0.0.1', '::1']
SIZES = [1, 10, 512]


@pytest.mark.parametrize('version,backend,address,size', list(itertools.product(VERSIONS, BACKENDS, ADDRESSES, SIZES)))
def test_fragment_is_python_with_the_guides_settings(version, backend, address, size):
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version=version,
                  catmaid_readonly_session_backend=backend, catmaid_readonly_memcached_address=address,
                  catmaid_readonly_cache_max_value_mb=size, catmaid_readonly_session_file_path="/srv/cat maid/it's here")
    ast.parse(text)
    assert text.startswith('#') and MANAGED in text.splitlines()[1]

    ns = run_fragment(text, ('django.contrib.auth', 'catmaid'))
    assert ns['EMAIL_BACKEND'] == 'django.core.mail.backends.dummy.EmailBackend'
    cache = ns['CACHES']['default']
    location = '[::1]:11211' if address == '::1' else '127.0.0.1:11211'
    assert cache['LOCATION'] == location
    new = tuple(int(p) for p in version.split('.')[:2]) >= (4, 1)
    if new:
        assert cache['BACKEND'] == 'django.core.cache.backends.memcached.PyMemcacheCache'
        assert 'server_max_value_length' not in cache['OPTIONS']
        assert cache['OPTIONS']['ignore_exc'] is True
    else:
        assert cache['BACKEND'] == 'django.core.cache.backends.memcached.MemcachedCache'
        assert cache['OPTIONS'] == {'server_max_value_length': size * 1024 * 1024}
    if backend == 'file':
        assert ns['SESSION_ENGINE'] == 'django.contrib.sessions.backends.file'
        assert ns['SESSION_FILE_PATH'] == "/srv/cat maid/it's here"
    else:
        assert ns['SESSION_ENGINE'] == 'django.contrib.sessions.backends.cache'
        assert 'SESSION_FILE_PATH' not in ns
    assert ns['INSTALLED_APPS'] == ('django.contrib.auth', 'catmaid', 'nolastlogin')
    assert ns['NO_UPDATE_LAST_LOGIN'] is True


@pytest.mark.parametrize('apps', [('a',), ['a'], ('a', 'nolastlogin')])
def test_fragment_extends_tuple_or_list_once_even_when_run_twice(apps):
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='4.2')
    ns = run_fragment(text, apps)
    again = run_fragment(text, ns['INSTALLED_APPS'])
    assert type(again['INSTALLED_APPS']) is type(apps)
    assert list(again['INSTALLED_APPS']).count('nolastlogin') == 1
    assert list(again['INSTALLED_APPS'])[0] == 'a'


def test_fragment_documents_its_include_line_with_the_real_path():
    text = render('readonly_settings.py.j2', catmaid_readonly_django_version='4.2',
                  catmaid_readonly_settings_path='/opt/catmaid/replica.py')
    assert 'with open("/opt/catmaid/replica.py", encoding=\'utf-8\')' in text
    assert "exec(compile(" in text


@pytest.mark.parametrize('address,size,memory', [('127.0.0.1', 10, 64), ('::1', 1, 2), ('127.0.0.2', 512, 1024)])
def test_memcached_conf_binds_loopback_with_the_item_limit_of_the_cache(address, size, memory):
    text = render('memcached.conf.j2', catmaid_readonly_memcached_address=address,
                  catmaid_readonly_cache_max_value_mb=size, catmaid_readonly_memcached_memory_mb=memory)
    options = [line for line in text.splitlines() if line and not line.startswith('#')]
    assert f'-l {address}' in options
    assert f'-I {size}m' in options
    assert f'-m {memory}' in options
    assert '-U 0' in options and '-p 11211' in options
    assert sum(1 for o in options if o.startswith('-l ')) == 1
