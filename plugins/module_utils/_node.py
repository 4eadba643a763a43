# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a node's state, shared by the module node_info (on the host) and the filters
missing_packages, block_differs (on the controller).

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

from typing import Any


def installed_packages(dpkg_output: Any) -> set[str]:
    """The names ``dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}|'`` lists as installed
    (the status abbreviation's second letter, the current state, is ``i``)."""
    installed = set()
    for entry in str(dpkg_output or '').split('|'):
        fields = entry.split()
        if len(fields) >= 2 and len(fields[1]) >= 2 and fields[1][1] == 'i':
            installed.add(fields[0])
    return installed


def describe_block(text: str, marker: str) -> dict[str, Any]:
    """Where ``marker`` (ansible.builtin.blockinfile's, with ``{mark}``) puts its block in ``text``: the marker
    lines' counts, whether BEGIN comes first, the lines between the first BEGIN and END, and the line ends."""
    lines = text.splitlines()
    begin, end = marker.replace('{mark}', 'BEGIN'), marker.replace('{mark}', 'END')
    out: dict[str, Any] = dict(begin=lines.count(begin), end=lines.count(end), ordered=False, lines=None,
                               final_newline=text.endswith('\n'), crlf='\r' in text)
    if out['begin'] and out['end']:
        first, last = lines.index(begin), lines.index(end)
        if first < last:
            out.update(ordered=True, lines=lines[first + 1:last])
    return out


def block_in_place(found: dict[str, Any], block: str) -> bool:
    """Whether blockinfile would leave the file as ``found`` (describe_block's result) describes it."""
    return (not found.get('crlf') and bool(found.get('final_newline')) and found.get('begin') == 1 and found.get('end') == 1
            and bool(found.get('ordered')) and found.get('lines') == str(block).splitlines())
