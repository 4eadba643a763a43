# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A delayed replica (issue 16 item 5): catmaid_replication_apply_delay as recovery_min_apply_delay
(module_utils _standby) and its replay lag not counted as lag (module_utils _lag)."""

from __future__ import annotations

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils._lag import delayed_lag, evaluate
from ansible_collections.catmaid.replication.plugins.module_utils._standby import (
    StandbyOptions, apply_mode, changed_keys, parse_apply_delay, parse_conf, standby_config, version_profile)


@pytest.mark.parametrize('given, wanted', [
    (None, (None, 0.0)), ('', (None, 0.0)), ('  ', (None, 0.0)), (0, (None, 0.0)), ('0', (None, 0.0)),
    ('0s', (None, 0.0)), ('30s', ('30s', 30.0)), (' 1h ', ('1h', 3600.0)), ('5min', ('5min', 300.0)),
    ('1500ms', ('1500ms', 1.5)), ('2d', ('2d', 172800.0)), ('30 s', ('30s', 30.0)),
])
def test_apply_delay_forms(given, wanted):
    assert parse_apply_delay(given) == wanted


@pytest.mark.parametrize('bad', ['30', 30, '1 hour', '1H', '-5s', '1.5h', 'soon', '25d', True, 1.5, ['1h'], '1h; x'])
def test_apply_delay_refused_with_the_forms_it_takes(bad):
    with pytest.raises(ValueError, match=r"whole number with a unit: ms, s, min, h or d"):
        parse_apply_delay(bad)


def test_a_bare_number_is_refused_naming_the_milliseconds():
    with pytest.raises(ValueError, match='no unit .PostgreSQL would read milliseconds'):
        parse_apply_delay('3600')


def _options(**kw) -> StandbyOptions:
    return StandbyOptions(primary_host='p', replication_user='r', **kw)


@pytest.mark.parametrize('major', [10, 11, 12, 13, 15, 17, 18])
def test_the_delay_is_written_only_when_set(major):
    with_delay = standby_config(major, _options(apply_delay='30s'))
    assert dict(with_delay.settings)['recovery_min_apply_delay'] == '30s'
    assert parse_conf(with_delay.content)['recovery_min_apply_delay'] == '30s'
    assert 'recovery_min_apply_delay' not in dict(standby_config(major, _options()).settings)


@pytest.mark.parametrize('major, restart', [(10, True), (11, True), (12, False), (15, False), (18, False)])
def test_changing_the_delay_reloads_from_12_and_restarts_before(major, restart):
    before = dict(standby_config(major, _options()).settings)
    after = dict(standby_config(major, _options(apply_delay='1h')).settings)
    keys = changed_keys({k: v for k, v in before.items() if k in version_profile(major).contexts}, after)
    assert keys == {'recovery_min_apply_delay'}
    assert apply_mode(major, keys, False, True) == (restart, not restart)
    # and taking it away again is a change too (the key is one of the profile's)
    assert changed_keys({k: v for k, v in after.items() if k in version_profile(major).contexts}, before) == keys


def _replica(name='r2', lag_bytes=5_000_000, lag_seconds=31.0, flush_lag_bytes=0):
    return {'application_name': name, 'state': 'streaming', 'lag_bytes': lag_bytes, 'lag_seconds': lag_seconds,
            'flush_lag_bytes': flush_lag_bytes}


def test_a_delayed_replica_fails_the_limits_without_its_delay():
    problems = evaluate(False, [_replica()], None, None, max_lag_bytes=65536, max_lag_seconds=15)
    assert problems == ['r2: replay lag 5000000 bytes > 65536', 'r2: replay lag 31 s > 15 s']


def test_its_delay_is_not_lag():
    assert evaluate(False, [_replica()], None, None, max_lag_bytes=65536, max_lag_seconds=15,
                    apply_delays={'r2': 30}) == []


def test_what_it_has_not_received_still_is_lag():
    problems = evaluate(False, [_replica(flush_lag_bytes=100_000, lag_seconds=50.0)], None, None,
                        max_lag_bytes=65536, max_lag_seconds=15, apply_delays={'r2': 30})
    assert problems == ['r2: flush lag 100000 bytes > 65536', 'r2: replay lag beyond its apply delay of 30 s 20 s > 15 s']


def test_only_the_named_replica_is_delayed():
    problems = evaluate(False, [_replica('r1'), _replica('r2')], None, None, max_lag_bytes=65536,
                        apply_delays={'r2': 30})
    assert problems == ['r1: replay lag 5000000 bytes > 65536']


@pytest.mark.parametrize('replica, wanted', [
    (_replica(lag_seconds=None, lag_bytes=0, flush_lag_bytes=0), (0, 0.0)),          # idle, caught up
    (_replica(lag_seconds=None, flush_lag_bytes=0), (0, 0.0)),                       # all received, no sample yet
    (_replica(lag_seconds=None, flush_lag_bytes=10), (10, None)),                    # unknown: fails a limit
    (_replica(lag_seconds=12.0), (0, 0.0)),                                          # less than the delay
    (_replica(flush_lag_bytes=None), (None, 1.0)),                                   # hidden statistics
])
def test_delayed_lag(replica, wanted):
    lag_bytes, lag_seconds, what = delayed_lag(replica, 30)
    assert (lag_bytes, lag_seconds) == wanted and what == 'beyond its apply delay of 30 s'


def test_an_unknown_flush_lag_still_fails():
    problems = evaluate(False, [_replica(flush_lag_bytes=None)], None, None, max_lag_bytes=65536,
                        apply_delays={'r2': 30})
    assert problems == ['r2: replay lag unknown (no replay position reported), which fails the limit']
