# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.catmaid.replication`` importable for plain pytest runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _collections_root() -> Path:
    # Inside an ansible_collections tree already (ansible-test, an installed copy)?
    parts = REPO.parts
    if len(parts) > 3 and parts[-3] == 'ansible_collections':
        return Path(*parts[:-3])
    root = REPO / 'build' / 'collections'
    link = root / 'ansible_collections' / 'catmaid' / 'replication'
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REPO, link)
    return root


sys.path.insert(0, str(_collections_root()))
