# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters catmaid.replication.file_differs and block_differs: whether a write task must run, judged
from what the module catmaid.replication.node_info read on the host."""

from __future__ import annotations

import hashlib
from typing import Any, Optional

from ansible_collections.catmaid.replication.plugins.module_utils._node import block_in_place, describe_block


def _state(node: Any, path: str) -> Optional[dict[str, Any]]:
    if not isinstance(node, dict):
        return None
    files = node.get('files')
    if not isinstance(files, dict):
        return None
    state = files.get(path)
    return state if isinstance(state, dict) else None


def _attributes_differ(state: dict[str, Any], mode: Optional[str], owner: Optional[str], group: Optional[str]) -> bool:
    if mode is not None and state.get('mode') != f'{int(str(mode), 8):04o}':
        return True
    if owner is not None and state.get('owner') != owner:
        return True
    return group is not None and state.get('group') != group


def file_differs(node: Any, path: str, content: Optional[str] = None, mode: Optional[str] = None, owner: Optional[str] = None,
                 group: Optional[str] = None, state: str = 'file') -> bool:
    """True unless ``node`` (node_info's result) shows ``path`` exactly as a task would leave it.

    ``state`` file (with ``content``, when given, compared by SHA-1), directory, or absent. A path
    node_info did not read, a symbolic link, and anything else unproven count as different.
    """
    current = _state(node, path)
    if current is None:
        return True
    if state == 'absent':
        return bool(current.get('exists')) or bool(current.get('link'))
    if not current.get('exists') or current.get('link') or current.get('type') != state or current.get('readable') is False:
        return True
    if content is not None and current.get('sha1') != hashlib.sha1(str(content).encode('utf-8')).hexdigest():  # nosec - a checksum
        return True
    return _attributes_differ(current, mode, owner, group)


def block_differs(node: Any, path: str, marker: str, block: str, mode: Optional[str] = None, owner: Optional[str] = None,
                  group: Optional[str] = None) -> bool:
    """True unless ``path`` holds the marked block exactly as ansible.builtin.blockinfile would write it.

    ``marker`` is blockinfile's marker with ``{mark}``; the default BEGIN and END marks. Proven only
    when node_info described the block (its option blocks) or returned the file's text, each marker line
    occurs once, BEGIN before END, the lines between are the lines of ``block``, and the file ends with a
    line break and has no carriage return.
    """
    current = _state(node, path)
    if current is None or not current.get('exists') or current.get('link') or current.get('type') != 'file':
        return True
    found = current.get('block')        # node_info's option blocks: where the block is, not the file's text
    if not isinstance(found, dict):
        text = current.get('content')
        if not isinstance(text, str):
            return True
        found = describe_block(text, marker)
    return not block_in_place(found, block) or _attributes_differ(current, mode, owner, group)


class FilterModule:
    """catmaid.replication filters."""

    def filters(self):
        return {'file_differs': file_differs, 'block_differs': block_differs}
