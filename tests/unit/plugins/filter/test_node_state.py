# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters file_differs and block_differs: a write task is skipped only when the read state proves it would change nothing."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.catmaid.replication.plugins.filter.node_state import block_differs, file_differs

PATH = '/etc/postgresql/15/main/conf.d/40-catmaid-replication.conf'
MARKER = '# {mark} catmaid.replication: rules'


def node(**state):
    base = dict(exists=True, type='file', link=False, mode='0644', owner='postgres', group='postgres',
                sha1=hashlib.sha1(b'a = 1\n').hexdigest())
    base.update(state)
    return {'files': {PATH: base}}


def test_equal_file():
    assert file_differs(node(), PATH, 'a = 1\n', mode='0644', owner='postgres', group='postgres') is False
    assert file_differs(node(), PATH, 'a = 1\n', mode=644) is False      # a number, as YAML may give it


@pytest.mark.parametrize('state,kwargs', [
    ({}, dict(content='a = 2\n')),
    (dict(mode='0600'), dict(mode='0644')),
    (dict(owner='root'), dict(owner='postgres')),
    (dict(group='root'), dict(group='postgres')),
    (dict(exists=False, type=None), {}),
    (dict(link=True), {}),
    (dict(type='directory', sha1=None), {}),
])
def test_different_file(state, kwargs):
    assert file_differs(node(**state), PATH, **kwargs) is True


def test_unknown_state_is_different():
    assert file_differs(None, PATH) is True
    assert file_differs({}, PATH) is True
    assert file_differs({'files': {}}, PATH) is True
    assert file_differs({'skipped': True}, PATH) is True


def test_directory_and_absent():
    folder = node(type='directory', sha1=None, mode='0755')
    assert file_differs(folder, PATH, mode='0755', state='directory') is False
    assert file_differs(folder, PATH, mode='0700', state='directory') is True
    assert file_differs(node(exists=False, type=None), PATH, state='absent') is False
    assert file_differs(node(), PATH, state='absent') is True
    assert file_differs(node(exists=False, type=None, link=True), PATH, state='absent') is True


def text_node(text, **state):
    return node(content=text, **state)


GOOD = '# BEGIN catmaid.replication: rules\nhost x\nhost y\n# END catmaid.replication: rules\nlocal all all peer\n'


def test_block_equal():
    assert block_differs(text_node(GOOD), PATH, MARKER, 'host x\nhost y\n', mode='0644') is False
    assert block_differs(text_node('before\n' + GOOD), PATH, MARKER, 'host x\nhost y') is False


@pytest.mark.parametrize('text', [
    GOOD.replace('host y\n', ''),                                   # a line gone
    GOOD.replace('host y', 'host z'),                               # a line changed
    GOOD + GOOD,                                                    # the markers twice
    GOOD.replace('# END catmaid.replication: rules\n', ''),         # no END
    '# END catmaid.replication: rules\nhost x\nhost y\n# BEGIN catmaid.replication: rules\n',   # the wrong order
    GOOD.replace('\n', '\r\n'),                                      # line ends blockinfile would not match
    GOOD.rstrip('\n'),                                               # no final line break
])
def test_block_different(text):
    assert block_differs(text_node(text), PATH, MARKER, 'host x\nhost y\n') is True


def test_block_without_content_or_with_other_mode():
    assert block_differs(node(), PATH, MARKER, 'host x') is True
    assert block_differs(text_node(GOOD, mode='0600'), PATH, MARKER, 'host x\nhost y\n', mode='0640') is True


def block_node(**block):
    info = dict(begin=1, end=1, ordered=True, lines=['host x', 'host y'], final_newline=True, crlf=False)
    info.update(block)
    return node(block=info)


def test_block_from_node_info_block_option():
    assert block_differs(block_node(), PATH, MARKER, 'host x\nhost y\n', mode='0644') is False
    for change in (dict(begin=2), dict(end=0), dict(ordered=False), dict(lines=['host x']), dict(final_newline=False), dict(crlf=True)):
        assert block_differs(block_node(**change), PATH, MARKER, 'host x\nhost y\n') is True
    assert block_differs(block_node(), PATH, MARKER, 'host x\nhost y\n', mode='0640') is True


def test_unreadable_file_is_different():
    assert file_differs(node(readable=False, sha1=None), PATH, mode='0644') is True
