# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-case results of the fault, bad-input and security suites, as machine-readable JSON.

A test wraps what it proves in ``with report.case(group, title, checked) as c:``; the case is
recorded as passed when the block ends normally and as failed (with the error's first line)
when it raises, and the error is re-raised for pytest. ``c.note(...)`` adds evidence (counts,
checksums, messages) to the record. ``Report.write()`` puts everything into
``build/reports/<suite>.json``; scripts/test-report.py renders docs/test-report.md from those
files, so the report table always comes from a real run.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[2]
REPORTS = Path(os.environ.get('CATMAID_REPORT_DIR', str(REPO / 'build' / 'reports')))


class Case:
    def __init__(self, group: str, title: str, checked: str) -> None:
        self.record: dict[str, Any] = {'group': group, 'title': title, 'checked': checked,
                                       'result': 'fail', 'evidence': [], 'duration_s': 0.0}

    def note(self, text: str) -> None:
        """Add one line of evidence (never a secret)."""
        self.record['evidence'].append(str(text))


class Report:
    def __init__(self, suite: str, **meta: Any) -> None:
        self.suite = suite
        self.meta = meta
        self.cases: list[dict[str, Any]] = []
        self.started = time.monotonic()

    @contextlib.contextmanager
    def case(self, group: str, title: str, checked: str) -> Iterator[Case]:
        c = Case(group, title, checked)
        t0 = time.monotonic()
        try:
            yield c
        except BaseException as exc:  # recorded, then re-raised for pytest
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            c.record['error'] = f'{type(exc).__name__}: {first}'[:500]
            raise
        else:
            c.record['result'] = 'pass'
        finally:
            c.record['duration_s'] = round(time.monotonic() - t0, 1)
            self.cases.append(c.record)
            self.write()

    def write(self) -> Path:
        REPORTS.mkdir(parents=True, exist_ok=True)
        path = REPORTS / f'{self.suite}.json'
        data = {
            'suite': self.suite,
            'finished': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
            'duration_s': round(time.monotonic() - self.started, 1),
            **self.meta,
            'cases': self.cases,
        }
        tmp = path.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(data, indent=2) + '\n')
        tmp.replace(path)
        return path
