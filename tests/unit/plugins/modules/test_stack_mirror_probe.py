# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_mirror_probe against real HTTP servers on loopback (no mocks): one that serves the
canary tile, one that answers 404, one that answers HTML, one that is too slow, one that is gone;
and (issue 18 item 8) servers that trickle their headers or body, and answers whose bytes and
declared content type disagree, judged like a browser by the bytes."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.catmaid.replication.plugins.modules import stack_mirror_probe

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'functional'))
from casereport import Report  # noqa: E402  (tests/functional's case recorder)

REPORT = Report('mirror_probe', command='pytest -q tests/unit/plugins/modules/test_stack_mirror_probe.py')
GROUP = 'mirror probe: stack_mirror_probe against local HTTP servers (tests/unit/plugins/modules/test_stack_mirror_probe.py)'


def image(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    """A real image file of the given Pillow format."""
    pil = pytest.importorskip('PIL.Image')
    out = io.BytesIO()
    pil.new('L', size, 128).save(out, format=fmt)
    return out.getvalue()


PNG = image('PNG')
JPEG = image('JPEG')


class _Handler(BaseHTTPRequestHandler):
    # path -> (code, content type, delay seconds)
    routes: dict[str, tuple[int, str, float]] = {}
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        code, ctype, delay = self.routes.get(self.path, (404, 'text/html', 0.0))
        if delay:
            time.sleep(delay)
        body = PNG if ctype.startswith('image/') else b'<html>nope</html>'
        try:
            self.send_response(code)
            self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def server():
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.routes = {
        '/good/3/1_2_0.jpg': (200, 'image/jpeg', 0.0),
        '/html/3/1_2_0.jpg': (200, 'text/html', 0.0),
        '/slow/3/1_2_0.jpg': (200, 'image/jpeg', 1.5),
        '/five/0/3/1/2.png': (200, 'image/png', 0.0),
    }
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def run(args: dict[str, Any], capsys, check_mode: bool = False) -> dict[str, Any]:
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            stack_mirror_probe.main()
    return json.loads(capsys.readouterr().out)


CANARY = {'x': 1100, 'y': 600, 'z': 3}


def mirrors(server: str, closed_port: int) -> list[dict[str, Any]]:
    return [
        {'title': 'gone', 'image_base': f'http://127.0.0.1:{closed_port}/good/'},
        {'title': 'missing', 'image_base': f'{server}/missing/'},
        {'title': 'html', 'image_base': f'{server}/html/'},
        {'title': 'hdf5', 'image_base': f'{server}/good/', 'tile_source_type': 3},
        {'title': 'slow', 'image_base': f'{server}/slow/'},
        {'title': 'good', 'image_base': f'{server}/good/'},
        {'title': 'five', 'image_base': f'{server}/five/', 'tile_source_type': 5, 'file_extension': 'png'},
    ]


def test_every_status_and_the_first_ok_mirror_is_chosen(server, closed_port, capsys):
    result = run({'mirrors': mirrors(server, closed_port), 'canary_location': CANARY, 'timeout': 0.7}, capsys)
    assert result['changed'] is False
    assert 'failed' not in result or not result['failed']
    by = {m['title']: m for m in result['mirrors']}
    assert [m['title'] for m in result['mirrors']] == ['gone', 'missing', 'html', 'hdf5', 'slow', 'good', 'five']
    assert [m['index'] for m in result['mirrors']] == list(range(1, 8))
    assert by['gone']['status'] == 'unreachable' and by['gone']['http_status'] is None
    assert by['missing']['status'] == 'http_error' and by['missing']['http_status'] == 404
    assert by['html']['status'] == 'not_image' and by['html']['http_status'] == 200
    assert by['hdf5']['status'] == 'unsupported' and by['hdf5']['url'] is None and 'HDF5' in by['hdf5']['msg']
    assert by['slow']['status'] == 'timeout' and by['slow']['latency_ms'] is None
    assert by['good']['status'] == 'ok' and by['good']['content_type'] == 'image/jpeg'
    assert by['good']['url'] == f'{server}/good/3/1_2_0.jpg'
    assert by['good']['latency_ms'] >= 0
    assert by['five']['status'] == 'ok' and by['five']['url'] == f'{server}/five/0/3/1/2.png'
    assert result['chosen_title'] == 'good'
    assert result['chosen'] == {'index': 6, 'title': 'good', 'url': by['good']['url'], 'latency_ms': by['good']['latency_ms']}


def test_a_longer_timeout_lets_the_slow_mirror_win(server, capsys):
    ms = [{'title': 'slow', 'image_base': f'{server}/slow/'}, {'title': 'good', 'image_base': f'{server}/good/'}]
    result = run({'mirrors': ms, 'canary_location': CANARY, 'timeout': 5}, capsys)
    assert result['chosen_title'] == 'slow'
    assert result['mirrors'][0]['latency_ms'] >= 1500


def test_positions_decide_the_order(server, capsys):
    ms = [{'title': 'five', 'image_base': f'{server}/five/', 'tile_source_type': 5, 'file_extension': 'png', 'position': 2},
          {'title': 'good', 'image_base': f'{server}/good/', 'position': 1}]
    result = run({'mirrors': ms, 'canary_location': CANARY}, capsys)
    assert [m['title'] for m in result['mirrors']] == ['good', 'five']
    assert result['chosen_title'] == 'good'


def test_require_image_off_accepts_any_2xx(server, capsys):
    ms = [{'title': 'html', 'image_base': f'{server}/html/'}]
    result = run({'mirrors': ms, 'canary_location': CANARY, 'require_image': False}, capsys)
    assert result['chosen_title'] == 'html'


def test_fails_when_no_mirror_answers_but_reports_all(server, closed_port, capsys):
    ms = mirrors(server, closed_port)[:4]
    result = run({'mirrors': ms, 'canary_location': CANARY}, capsys)
    assert result['failed'] is True
    assert 'no mirror' in result['msg'] and '1. gone: unreachable' in result['msg']
    assert [m['status'] for m in result['mirrors']] == ['unreachable', 'http_error', 'not_image', 'unsupported']
    assert result['chosen'] is None


def test_require_any_false_reports_without_failing(server, closed_port, capsys):
    result = run({'mirrors': mirrors(server, closed_port)[:2], 'canary_location': CANARY, 'require_any': False}, capsys)
    assert not result.get('failed')
    assert result['chosen'] is None and result['chosen_title'] is None


def test_require_names_a_mirror_that_must_work(server, closed_port, capsys):
    ms = mirrors(server, closed_port)
    result = run({'mirrors': ms, 'canary_location': CANARY, 'require': 'missing', 'timeout': 0.7}, capsys)
    assert result['failed'] is True
    assert "'missing' is http_error" in result['msg']
    assert result['chosen_title'] == 'good'
    result = run({'mirrors': ms, 'canary_location': CANARY, 'require': 'good', 'timeout': 0.7}, capsys)
    assert not result.get('failed') and result['chosen_title'] == 'good'


def test_check_mode_probes_the_same_and_changes_nothing(server, closed_port, capsys):
    ms = [{'title': 'good', 'image_base': f'{server}/good/'}]
    before = len(_Handler.seen)
    result = run({'mirrors': ms, 'canary_location': CANARY}, capsys, check_mode=True)
    assert result['changed'] is False and result['chosen_title'] == 'good'
    assert _Handler.seen[before:] == ['/good/3/1_2_0.jpg']


@pytest.mark.parametrize('args,words', [
    ({'mirrors': []}, 'must not be empty'),
    ({'mirrors': [{'title': 'a', 'image_base': 'x/'}, {'title': 'a', 'image_base': 'y/'}]}, 'unique'),
    ({'mirrors': [{'title': 'a', 'image_base': 'x/'}], 'require': 'b'}, 'require names no mirror'),
    ({'mirrors': [{'title': 'a', 'image_base': 'x/'}], 'timeout': 0}, 'timeout must be positive'),
    ({'mirrors': [{'title': 'a', 'image_base': 'x/', 'tile_width': 0}]}, 'must be positive'),
])
def test_bad_input_fails_before_any_request(args, words, capsys):
    before = len(_Handler.seen)
    result = run(args, capsys)
    assert result['failed'] is True and words in result['msg']
    assert len(_Handler.seen) == before


class _SlowHandler(BaseHTTPRequestHandler):
    """Answers that arrive too slowly: the body or the headers one byte every half second."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        try:
            if self.path.startswith('/trickle-body/'):
                self.send_response(200)
                self.send_header('Content-Type', 'image/png')
                self.send_header('Content-Length', str(len(PNG)))
                self.end_headers()
                self.wfile.flush()
                for i in range(len(PNG)):
                    self.wfile.write(PNG[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.5)
            elif self.path.startswith('/trickle-headers/'):
                self.wfile.write(b'HTTP/1.1 200 OK\r\n')
                self.wfile.flush()
                head = f'Content-Type: image/png\r\nX-Slow: {"x" * 20}\r\nContent-Length: {len(PNG)}\r\n\r\n'.encode()
                for i in range(len(head)):
                    self.wfile.write(head[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.5)
                self.wfile.write(PNG)
            else:
                body, ctype = _BYTES.get(self.path, (b'', 'text/plain'))
                self.send_response(200)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


# path -> (body, declared content type)
_BYTES: dict[str, tuple[bytes, str]] = {}


@pytest.fixture(scope='module')
def slow_server():
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), _SlowHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


def test_the_timeout_is_a_wall_clock_limit_per_mirror(slow_server, server, capsys):
    """Issue 18 item 8: each socket read was bounded, the mirror's total time was not."""
    with REPORT.case(GROUP, 'a mirror trickling its body or its headers is cut at the timeout (issue 18 item 8)',
                     'three mirrors with timeout 1.5 s: one sends its 200 answer\'s PNG body one byte per 0.5 s '
                     '(35 s in all), one its header lines one byte per 0.5 s, then a good one; the first two '
                     'are timeout, the third ok, the whole probe within 2 x 1.5 s + 1.5 s') as c:
        ms = [{'title': 'trickle body', 'image_base': f'{slow_server}/trickle-body/'},
              {'title': 'trickle headers', 'image_base': f'{slow_server}/trickle-headers/'},
              {'title': 'good', 'image_base': f'{server}/good/'}]
        start = time.monotonic()
        result = run({'mirrors': ms, 'canary_location': CANARY, 'timeout': 1.5}, capsys)
        elapsed = time.monotonic() - start
        statuses = [f'{m["title"]}: {m["status"]} ({m["msg"]})' for m in result['mirrors']]
        c.note(f'probe took {elapsed:.1f} s: ' + '; '.join(statuses))
        assert elapsed < 4.5, f'the probe ran {elapsed:.1f} s with timeout 1.5 s per mirror'
        assert [m['status'] for m in result['mirrors']] == ['timeout', 'timeout', 'ok']
        assert result['chosen_title'] == 'good'


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG', 'GIF', 'WEBP', 'BMP', 'TIFF'])
def test_an_image_is_judged_by_its_bytes_not_its_content_type(fmt, slow_server, capsys):
    """Browsers display an image whatever the server calls it (application/octet-stream here)."""
    with REPORT.case(GROUP, f'a real {fmt} tile sent as application/octet-stream is ok (issue 18 item 8)',
                     f'an 8x8 {fmt} made by Pillow, served with Content-Type application/octet-stream: ok, '
                     f'its format found from the bytes, as a browser displays it') as c:
        _BYTES[f'/{fmt}/3/1_2_0.jpg'] = (image(fmt), 'application/octet-stream')
        result = run({'mirrors': [{'title': fmt, 'image_base': f'{slow_server}/{fmt}/'}], 'canary_location': CANARY},
                     capsys)
        entry = result['mirrors'][0]
        c.note(f'{entry["status"]}: {entry["msg"]}')
        assert entry['status'] == 'ok' and result['chosen_title'] == fmt, entry
        assert entry['image_format'] == fmt.lower()


@pytest.mark.parametrize('title,body,ctype', [
    ('an empty image/jpeg', b'', 'image/jpeg'),
    ('HTML labelled image/png', b'<!DOCTYPE html><html><body>Not found</body></html>', 'image/png'),
    ('a PNG signature without its header', b'\x89PNG\r\n\x1a\n', 'image/png'),
    ('a JPEG cut after its first bytes', JPEG[:3], 'image/jpeg'),
])
def test_a_body_that_is_no_image_is_not_image_whatever_its_content_type(title, body, ctype, slow_server, capsys):
    with REPORT.case(GROUP, f'{title} is not_image (issue 18 item 8)',
                     f'200 with Content-Type {ctype} and {len(body)} bytes that no browser decodes: not_image, '
                     f'not chosen') as c:
        path = '/broken-' + str(abs(hash(title))) + '/'
        _BYTES[f'{path}3/1_2_0.jpg'] = (body, ctype)
        result = run({'mirrors': [{'title': title, 'image_base': f'{slow_server}{path}'}],
                      'canary_location': CANARY, 'require_any': False}, capsys)
        entry = result['mirrors'][0]
        c.note(f'{entry["status"]}: {entry["msg"]}')
        assert entry['status'] == 'not_image', entry
        assert result['chosen'] is None
