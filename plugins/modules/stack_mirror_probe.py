#!/usr/bin/python
# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_mirror_probe
short_description: Check which CATMAID image stack mirror the front-end would use, from this host
version_added: 0.1.0
description:
  - CATMAID's front-end loads a stack from its first mirror whose B(canary tile) loads, trying
    the mirrors in order. This module does the same from the managed host, so an operator learns,
    per site, which mirror users there get and which mirrors are broken.
  - For every mirror it builds the canary tile URL the front-end would request (the tile holding
    O(canary_location) at zoom level 0, in the mirror's tile source layout), fetches it over
    HTTP(S) within a wall-clock time limit, and reports the status, HTTP code, content type,
    image format and latency.
  - Like a browser, it decides whether the canary is an image by the bytes it receives (the magic
    number and a valid header of JPEG, PNG, GIF, WebP, BMP, TIFF or AVIF), not by the
    C(Content-Type) the server declares. An empty body or an HTML page is no image whatever it is
    labelled, and a JPEG sent as C(application/octet-stream) is one.
  - Supported tile source types (CATMAID's C(tile-source.js)) are 1 (C(<base><z>/<row>_<col>_<zoom>.<ext>)),
    2 (request query), 4 (C(<base><z>/<zoom>/<row>_<col>.<ext>)), 5 (C(<base><zoom>/<z>/<row>/<col>.<ext>)),
    6 (DVID imageblk), 7 (render service), 8 (DVID imagetile), 9 (FlixServer) and 10 (H2N5);
    6 and 8 in XY orientation. Any other type (3 HDF5, 11 N5, or a type this module does not
    know) gets the status V(unsupported) with a message saying why; it is not fetched.
  - The module only reads; it never reports a change.
author:
  - catmaid.replication developers (@catmaid)
options:
  mirrors:
    description:
      - The stack's mirrors, in the order the front-end tries them (CATMAID's mirror C(position)).
        When any mirror has O(mirrors[].position), mirrors are sorted by it first.
    type: list
    elements: dict
    required: true
    suboptions:
      title:
        description: Mirror title, as in CATMAID's admin. Titles must be unique.
        type: str
        required: true
      image_base:
        description:
          - Image base URL of the mirror, used as given (the front-end does not add a C(/) either;
            path-based layouts need it to end with one).
        type: str
        required: true
      file_extension:
        description: File extension of the tiles, without the dot.
        type: str
        default: jpg
      tile_source_type:
        description: CATMAID tile source type of the mirror.
        type: int
        default: 1
      tile_width:
        description: Tile width in pixels.
        type: int
        default: 512
      tile_height:
        description: Tile height in pixels.
        type: int
        default: 512
      position:
        description: The mirror's position in CATMAID (lower first). Optional.
        type: int
  canary_location:
    description:
      - The stack's canary location in stack pixel coordinates (CATMAID's C(canary_location)).
    type: dict
    default: {x: 0, y: 0, z: 0}
    suboptions:
      x:
        description: X in stack pixels.
        type: int
        default: 0
      y:
        description: Y in stack pixels.
        type: int
        default: 0
      z:
        description: Section (Z) in stack pixels.
        type: int
        default: 0
  timeout:
    description:
      - Seconds one canary request may take in total, measured by the clock (name lookup,
        connect, TLS, the answer's headers and its body, however slowly the server sends them).
        A slower mirror gets the status V(timeout); each mirror gets its own limit.
    type: float
    default: 10
  require_image:
    description:
      - Count a mirror as V(ok) only when its canary answers 2xx with a body that is an image,
        judged by its bytes as a browser does (see RV(mirrors[].image_format)), as the front-end
        needs an image to load. With V(false) any 2xx answer is V(ok).
    type: bool
    default: true
  require_any:
    description:
      - Fail when no mirror answers V(ok). The per-mirror results are returned either way.
    type: bool
    default: true
  require:
    description:
      - Title of a mirror that must answer V(ok); the module fails when it does not.
    type: str
  validate_certs:
    description: Verify HTTPS certificates.
    type: bool
    default: true
  ca_path:
    description: PEM file of CA certificates to verify HTTPS mirrors with.
    type: path
  use_proxy:
    description: Use the proxy from the environment (C(https_proxy) and friends), as a browser at this site would.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same requests.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
notes:
  - Requests are sent from the managed host. Run the module on a host at each site whose users'
    mirror choice you want to know (for example with C(delegate_to) or one play per site).
  - The front-end additionally tries each canary with a CORS request (for WebGL layers); this
    module checks the plain request only, which is what decides the mirror.
seealso:
  - name: CATMAID tile sources
    description: The URL layouts of the tile source types.
    link: https://github.com/catmaid/CATMAID/blob/master/django/applications/catmaid/static/js/tile-source.js
"""

EXAMPLES = r"""
- name: Find the mirror users at this site get for the stack
  catmaid.replication.stack_mirror_probe:
    canary_location: {x: 1024, y: 1024, z: 10}
    timeout: 5
    mirrors:
      - title: Local mirror
        image_base: https://images.lab.example.org/stack1/
        file_extension: jpg
        tile_source_type: 1
      - title: Public host
        image_base: https://public.example.org/data/stack1/
        file_extension: png
        tile_source_type: 5
  register: probe

- name: Show the choice
  ansible.builtin.debug:
    msg: "Users here load tiles from {{ probe.chosen.title | default('nowhere') }}"

- name: Fail unless the local mirror works, but report every mirror
  catmaid.replication.stack_mirror_probe:
    require: Local mirror
    mirrors:
      - title: Local mirror
        image_base: https://images.lab.example.org/stack1/
      - title: Public host
        image_base: https://public.example.org/data/stack1/
"""

RETURN = r"""
mirrors:
  description: One entry per mirror, in the order they were tried.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: 1-based place in the order tried.
      type: int
      sample: 1
    title:
      description: Mirror title.
      type: str
      sample: Local mirror
    tile_source_type:
      description: Tile source type.
      type: int
      sample: 1
    url:
      description: Canary tile URL requested; null for V(unsupported).
      type: str
      sample: https://images.lab.example.org/stack1/10/2_2_0.jpg
    status:
      description:
        - V(ok) (the front-end would use it), V(http_error) (answered with a non-2xx code),
          V(not_image) (2xx but the body is no image, see O(require_image)), V(timeout) (no complete
          answer within O(timeout)), V(unreachable)
          (refused, name not resolved, TLS failure, ...) or V(unsupported) (unknown layout, not fetched).
      type: str
      sample: ok
    http_status:
      description: HTTP status code, null when there was no answer.
      type: int
      sample: 200
    content_type:
      description: Content-Type of the answer, null when there was none. It does not decide the status.
      type: str
      sample: image/jpeg
    image_format:
      description:
        - Image format of the body found from its bytes (V(jpeg), V(png), V(gif), V(webp), V(bmp),
          V(tiff) or V(avif)); null when the body is no image or there was none. Of the major
          browsers only Safari displays TIFF.
      type: str
      sample: jpeg
    latency_ms:
      description: Milliseconds from the request to the end of the answer; null when not fetched or timed out.
      type: float
      sample: 12.4
    msg:
      description: What happened, in words.
      type: str
      sample: HTTP 200, image/jpeg, 2048 bytes, jpeg 512x512
chosen:
  description: The mirror the front-end would use (the first V(ok) entry of RV(mirrors)), or null.
  returned: always
  type: dict
  sample: {index: 1, title: Local mirror, url: "https://images.lab.example.org/stack1/10/2_2_0.jpg", latency_ms: 12.4}
chosen_title:
  description: Title of RV(chosen), or null.
  returned: always
  type: str
  sample: Local mirror
"""

import signal
import socket
import threading
import time
from typing import Any, Callable, Optional
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.catmaid.replication.plugins.module_utils._mirrors import (
    SNIFF_BYTES, UnsupportedLayout, canary_url, choose, classify, order_mirrors, sniff_image)

_CHUNK = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class _WallClock(Exception):
    """The mirror's time limit passed (raised by the SIGALRM timer, wherever the request was)."""


def _within(seconds: float, work: Callable[[], Any]) -> Any:
    """Run ``work`` and raise _WallClock once ``seconds`` have passed, whatever it is blocked in
    (name lookup, connect, a server sending its headers or body a byte at a time: socket timeouts
    bound each read, not their sum). A SIGALRM timer; outside the main thread, where signals
    cannot be used, only the socket timeouts and the checks between reads apply."""
    if threading.current_thread() is not threading.main_thread():
        return work()

    def expired(_signum, _frame):
        raise _WallClock(f'timed out after {seconds:g} s')

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, (socket.timeout, TimeoutError, _WallClock)):
        return True
    reason = getattr(exc, 'reason', None)
    return isinstance(reason, (socket.timeout, TimeoutError)) or 'timed out' in str(reason or exc).lower()


def _fetch(module: AnsibleModule, url: str, timeout: float) -> dict[str, Any]:
    """GET ``url`` and read the body within ``timeout`` seconds in total. The one network seam."""
    params = module.params
    start = time.monotonic()
    deadline = start + timeout
    result: dict[str, Any] = {'http_status': None, 'content_type': None, 'latency_ms': None, 'image_format': None}

    def get() -> tuple[int, Optional[str], int, bytes]:
        resp = open_url(url, method='GET', timeout=timeout, validate_certs=params['validate_certs'],
                        ca_path=params['ca_path'], use_proxy=params['use_proxy'], follow_redirects='all',
                        headers={'Cache-Control': 'no-cache'}, http_agent='catmaid.replication stack_mirror_probe')
        size = 0
        head = b''
        try:
            while True:
                if time.monotonic() > deadline:
                    raise socket.timeout('timed out while reading the answer')
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                size += len(chunk)
                if size > _MAX_BODY:
                    break
            return resp.getcode(), resp.headers.get('Content-Type'), size, head
        finally:
            resp.close()

    try:
        code, ctype, size, head = _within(timeout, get)
        fmt, detail = sniff_image(head, complete=size <= len(head))
        result.update(http_status=code, content_type=ctype, latency_ms=round((time.monotonic() - start) * 1000, 1),
                      image_format=fmt)
        result['msg'] = f'HTTP {code}, {ctype or "no content type"}, {size} bytes, ' + (
            f'{fmt} {detail}' if fmt else f'no image: {detail}')
    except HTTPError as exc:
        result.update(status='http_error', http_status=exc.code, content_type=exc.headers.get('Content-Type') if exc.headers else None,
                      latency_ms=round((time.monotonic() - start) * 1000, 1), msg=f'HTTP {exc.code} {exc.reason}')
        exc.close()
    except Exception as exc:  # pylint: disable=broad-except
        # URLError, socket errors, TLS failures and ansible's own ConnectionError all mean the
        # canary could not be loaded; which one it was is in the message.
        if _is_timeout(exc) or time.monotonic() > deadline:
            result.update(status='timeout', msg=f'no complete answer within {timeout:g} s ({_describe(exc)})')
        else:
            result.update(status='unreachable', msg=_describe(exc))
    return result


def _describe(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, URLError) else exc
    return f'{type(reason).__name__}: {reason}'


def probe(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    canary = params['canary_location'] or {}
    results: list[dict[str, Any]] = []
    for index, mirror in enumerate(order_mirrors(params['mirrors']), start=1):
        entry: dict[str, Any] = {
            'index': index, 'title': mirror['title'], 'tile_source_type': mirror['tile_source_type'],
            'url': None, 'status': None, 'http_status': None, 'content_type': None, 'image_format': None,
            'latency_ms': None, 'msg': '',
        }
        try:
            entry['url'] = canary_url(mirror['tile_source_type'], mirror['image_base'], mirror['file_extension'],
                                      canary, mirror['tile_width'], mirror['tile_height'])
        except UnsupportedLayout as exc:
            entry.update(status='unsupported', msg=str(exc))
            results.append(entry)
            continue
        except ValueError as exc:
            module.fail_json(msg=f'mirror {mirror["title"]!r}: {exc}')
        fetched = _fetch(module, entry['url'], params['timeout'])
        status = fetched.pop('status', None) or classify(fetched['http_status'], fetched['image_format'],
                                                         params['require_image'])
        entry.update(fetched, status=status)
        if status == 'not_image':
            entry['msg'] += '; the front-end would not use it'
        results.append(entry)
    return {'mirrors': results}


def main() -> None:
    mirror_spec = dict(
        title=dict(type='str', required=True),
        image_base=dict(type='str', required=True),
        file_extension=dict(type='str', default='jpg'),
        tile_source_type=dict(type='int', default=1),
        tile_width=dict(type='int', default=512),
        tile_height=dict(type='int', default=512),
        position=dict(type='int'),
    )
    module = AnsibleModule(
        argument_spec=dict(
            mirrors=dict(type='list', elements='dict', required=True, options=mirror_spec),
            canary_location=dict(type='dict', default={'x': 0, 'y': 0, 'z': 0}, options=dict(
                x=dict(type='int', default=0), y=dict(type='int', default=0), z=dict(type='int', default=0))),
            timeout=dict(type='float', default=10),
            require_image=dict(type='bool', default=True),
            require_any=dict(type='bool', default=True),
            require=dict(type='str'),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
            use_proxy=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    titles = [m['title'] for m in params['mirrors']]
    if not titles:
        module.fail_json(msg='mirrors must not be empty')
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    if duplicates:
        module.fail_json(msg=f'mirror titles must be unique; repeated: {", ".join(duplicates)}')
    if params['require'] is not None and params['require'] not in titles:
        module.fail_json(msg=f'require names no mirror: {params["require"]!r} is not one of {titles}')
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be positive')
    for mirror in params['mirrors']:
        if mirror['tile_width'] <= 0 or mirror['tile_height'] <= 0:
            module.fail_json(msg=f'mirror {mirror["title"]!r}: tile_width and tile_height must be positive')

    result = probe(module)
    chosen: Optional[dict[str, Any]] = choose(result['mirrors'])
    result['chosen'] = None if chosen is None else {k: chosen[k] for k in ('index', 'title', 'url', 'latency_ms')}
    result['chosen_title'] = None if chosen is None else chosen['title']
    result['changed'] = False

    by_title = {m['title']: m for m in result['mirrors']}
    summary = '; '.join(f'{m["index"]}. {m["title"]}: {m["status"]}' for m in result['mirrors'])
    if params['require'] is not None and by_title[params['require']]['status'] != 'ok':
        required = by_title[params['require']]
        module.fail_json(msg=f'required mirror {params["require"]!r} is {required["status"]}: {required["msg"]} ({summary})',
                         **result)
    if params['require_any'] and chosen is None:
        module.fail_json(msg=f'no mirror answered its canary tile with an image ({summary})', **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
