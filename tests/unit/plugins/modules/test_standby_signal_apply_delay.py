# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""standby_signal's option apply_delay and pg_replication_info's apply_delays: declared, documented."""

from __future__ import annotations

import yaml

from ansible_collections.catmaid.replication.plugins.modules import pg_replication_info as info
from ansible_collections.catmaid.replication.plugins.modules import standby_signal as mod


def test_apply_delay_is_an_option_and_documented():
    assert mod.argument_spec()['apply_delay'] == {'type': 'str'}
    doc = yaml.safe_load(mod.DOCUMENTATION)['options']['apply_delay']
    assert doc['type'] == 'str' and 'recovery_min_apply_delay' in ' '.join(doc['description'])
    examples = yaml.safe_load(mod.EXAMPLES)
    assert any(task['catmaid.replication.standby_signal'].get('apply_delay') == '1h' for task in examples)


def test_apply_delays_is_documented_with_flush_lag_bytes():
    doc = yaml.safe_load(info.DOCUMENTATION)['options']['apply_delays']
    assert doc['type'] == 'dict'
    returned = yaml.safe_load(info.RETURN)['replicas']['contains']
    assert returned['flush_lag_bytes']['type'] == 'int'
