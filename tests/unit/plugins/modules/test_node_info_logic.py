# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of catmaid.replication.node_info (the reads themselves run in Molecule and the bench)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils._scram import build_verifier
from ansible_collections.catmaid.replication.plugins.modules import node_info


def test_describe_file_regular_with_content(tmp_path):
    path = tmp_path / 'a.conf'
    path.write_bytes(b'max_wal_senders = 10\n')
    os.chmod(path, 0o640)
    out = node_info.describe_file(str(path), True)
    assert out['exists'] and out['type'] == 'file' and not out['link']
    assert out['mode'] == '0640'
    assert out['sha1'] == hashlib.sha1(b'max_wal_senders = 10\n').hexdigest()
    assert out['content'] == 'max_wal_senders = 10\n'


def test_describe_file_without_content_missing_and_directory(tmp_path):
    path = tmp_path / 'b'
    path.write_text('x')
    assert 'content' not in node_info.describe_file(str(path), False)
    missing = node_info.describe_file(str(tmp_path / 'nope'), True)
    assert missing['exists'] is False and missing['sha1'] is None and 'content' not in missing
    folder = node_info.describe_file(str(tmp_path), True)
    assert folder['type'] == 'directory' and folder['sha1'] is None and 'content' not in folder


def test_describe_file_follows_a_link_and_says_so(tmp_path):
    real = tmp_path / 'real'
    real.write_text('y')
    link = tmp_path / 'link'
    link.symlink_to(real)
    out = node_info.describe_file(str(link), True)
    assert out['link'] is True and out['type'] == 'file' and out['content'] == 'y'


def test_describe_file_does_not_return_large_content(tmp_path):
    path = tmp_path / 'big'
    path.write_bytes(b'z' * (node_info.MAX_CONTENT + 10))
    out = node_info.describe_file(str(path), True)
    assert 'content' not in out and out['sha1'] == hashlib.sha1(b'z' * (node_info.MAX_CONTENT + 10)).hexdigest()


def test_parse_dpkg():
    out = 'nginx ii |libnginx-mod-stream rc |postgresql-15 iU |'
    assert node_info.parse_dpkg(out, ['nginx', 'libnginx-mod-stream', 'postgresql-15', 'unknown']) == {
        'nginx': True, 'libnginx-mod-stream': False, 'postgresql-15': False, 'unknown': False}


def test_parse_systemctl_show_in_order_and_short_output():
    out = 'Id=nginx.service\nActiveState=active\nUnitFileState=enabled\n\nId=x.service\nActiveState=inactive\nUnitFileState=disabled\n'
    assert node_info.parse_systemctl_show(out, ['nginx', 'x', 'y']) == {
        'nginx': {'active': 'active', 'enabled': 'enabled'},
        'x': {'active': 'inactive', 'enabled': 'disabled'},
        'y': {'active': None, 'enabled': None}}


def test_colon_hex_is_community_crypto_form():
    support = pytest.importorskip('ansible_collections.community.crypto.plugins.module_utils._crypto.support')
    assert node_info.colon_hex(b'abc') == support.get_fingerprint_of_bytes(b'abc')['sha256']


@pytest.fixture(name='role_row')
def fixture_role_row():
    return dict(rolsuper=False, rolreplication=True, rolcanlogin=True, rolconnlimit=-1,
                rolpassword=build_verifier('secret', iterations=4096))


def test_role_state_unchanged(role_row):
    assert node_info.role_state(role_row, 'secret', None, True) == dict(exists=True, superuser=False, readable=True, needs_change=False)
    assert node_info.role_state(role_row, 'secret', -1, True)['needs_change'] is False


@pytest.mark.parametrize('change', [dict(rolreplication=False), dict(rolcanlogin=False), dict(rolconnlimit=3), dict(rolpassword=None),
                                    dict(rolpassword='md5' + '0' * 32)])
def test_role_state_needs_change(role_row, change):
    role_row.update(change)
    assert node_info.role_state(role_row, 'secret', -1, True)['needs_change'] is True


def test_role_state_wrong_password_missing_or_unreadable(role_row):
    assert node_info.role_state(role_row, 'other', None, True)['needs_change'] is True
    assert node_info.role_state(None, 'secret', None, True) == dict(exists=False, superuser=False, readable=True, needs_change=True)
    assert node_info.role_state(dict(role_row, rolpassword=None), 'secret', None, False)['needs_change'] is True


def test_describe_file_unreadable_is_said(tmp_path, monkeypatch):
    path = tmp_path / 'key'
    path.write_text('secret')

    def refuse(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr('builtins.open', refuse)
    out = node_info.describe_file(str(path), True)
    assert out['exists'] and out['readable'] is False and out['sha1'] is None and 'content' not in out


def test_describe_block_lines_only():
    text = 'local all all peer\n# BEGIN m\nhost a\nhost b\n# END m\n'
    expected = dict(begin=1, end=1, ordered=True, lines=['host a', 'host b'], final_newline=True, crlf=False)
    assert node_info.describe_block(text, '# {mark} m') == expected
    swapped = node_info.describe_block('# END m\n# BEGIN m', '# {mark} m')
    assert swapped['ordered'] is False and swapped['lines'] is None and swapped['final_newline'] is False
    assert node_info.describe_block('x\r\n', '# {mark} m')['crlf'] is True
