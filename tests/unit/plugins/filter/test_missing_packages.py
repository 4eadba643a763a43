# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.filter.missing_packages import FilterModule, missing_packages


@pytest.mark.parametrize('output, wanted, missing', [
    ('nginx ii |libnginx-mod-stream ii |', ['nginx', 'libnginx-mod-stream'], []),
    ('nginx ii |', ['nginx', 'libnginx-mod-stream'], ['libnginx-mod-stream']),      # unknown to dpkg
    ('nginx rc |acl un |', ['nginx', 'acl'], ['nginx', 'acl']),                      # config files only; not installed
    ('nginx hi |', ['nginx'], []),                                                   # held, installed
    ('', ['postgresql'], ['postgresql']),
    (None, ['postgresql'], ['postgresql']),
    ('nginx ii |', ['nginx=1.22*'], ['nginx=1.22*']),                               # a version: apt decides
])
def test_missing_packages(output, wanted, missing):
    assert missing_packages(output, wanted) == missing


def test_registered_under_its_name():
    assert FilterModule().filters()['missing_packages'] is missing_packages
