# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter catmaid.replication.missing_packages: which packages dpkg does not have installed."""

from __future__ import annotations

from ansible_collections.catmaid.replication.plugins.module_utils._node import installed_packages


def missing_packages(dpkg_output, wanted):
    """The names in ``wanted`` that dpkg-query does not list as installed.

    ``dpkg_output`` is what ``dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}|'``
    prints: one "name status|" entry per package dpkg knows.

    The status abbreviation's second letter is the current state; ``i`` means installed. Names
    dpkg does not know (unknown, or with a version such as ``nginx=1.22*``) count as missing, so
    apt runs for them.
    """
    installed = installed_packages(dpkg_output)
    return [name for name in wanted if name not in installed]


class FilterModule:
    """catmaid.replication filters."""

    def filters(self):
        return {'missing_packages': missing_packages}
