# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CATMAID stack mirror URL layouts: which tile URL the front-end asks for as a mirror's canary.

Pure functions, no I/O. They follow the tile sources of CATMAID's front-end
(``django/applications/catmaid/static/js/tile-source.js``): a stack's canary tile is the tile
that holds the stack's canary location (stack pixel coordinates x, y, z) at zoom level 0, so
``col = floor(x / tile_width)`` and ``row = floor(y / tile_height)``.

This file is private to the collection: its names may change without notice.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Optional
from urllib.parse import urlencode

# Tile source types whose canary URL can be built from a mirror's fields alone.
SUPPORTED_TYPES: dict[int, str] = {
    1: 'file-based image stack (<base><z>/<row>_<col>_<zoom>.<ext>)',
    2: 'request query (<base>?x=..&y=..&width=..&height=..&row=y&col=x&scale=..&z=..)',
    4: 'file-based with zoom folders (<base><z>/<zoom>/<row>_<col>.<ext>)',
    5: 'directory-based large data (<base><zoom>/<z>/<row>/<col>.<ext>)',
    6: 'DVID imageblk, XY orientation (<base><tw>_<th>/<x0>_<y0>_<z>/<ext>)',
    7: 'render service (<base>largeDataTileSource/<tw>/<th>/<zoom>/<z>/<row>/<col>.<ext>)',
    8: 'DVID imagetile, XY orientation (<base>xy/<zoom>/<col>_<row>_<z>)',
    9: 'FlixServer (<base><z>/<row>_<col>_<zoom>.<ext>)',
    10: 'H2N5 (<base> with %SCALE_DATASET%, %AXIS_0%, %AXIS_1%, %AXIS_2% replaced, then .<ext>)',
}

# Known to CATMAID, but their canary URL needs more than the mirror's fields.
KNOWN_UNSUPPORTED: dict[int, str] = {
    3: ('HDF5 through Django: the URL is built from the CATMAID instance, project id and stack id, '
        'not from the mirror'),
    11: ('N5 image blocks: block coordinates depend on the dataset attributes (block size, axis '
         'permutation) that the front-end reads over the N5 protocol'),
}


class UnsupportedLayout(ValueError):
    """The tile source type has no URL layout this module knows."""


def canary_tile(x: int, y: int, tile_width: int, tile_height: int) -> tuple[int, int]:
    """Column and row of the tile holding stack pixel (x, y): ``floor(x / tw), floor(y / th)``."""
    if tile_width <= 0 or tile_height <= 0:
        raise ValueError(f'tile size must be positive, got {tile_width}x{tile_height}')
    return x // tile_width, y // tile_height


def layout_name(tile_source_type: int) -> Optional[str]:
    """Human-readable layout of a supported type, None otherwise."""
    return SUPPORTED_TYPES.get(tile_source_type)


def unsupported_reason(tile_source_type: int) -> str:
    """Why a type has no URL here (for the module's message)."""
    if tile_source_type in KNOWN_UNSUPPORTED:
        return f'tile source type {tile_source_type} is not supported: {KNOWN_UNSUPPORTED[tile_source_type]}'
    known = ', '.join(str(t) for t in sorted(SUPPORTED_TYPES))
    return f'tile source type {tile_source_type} is unknown to this module (supported: {known})'


def tile_url(tile_source_type: int, image_base: str, file_extension: str, z: int, col: int, row: int,
             zoom: int = 0, tile_width: int = 512, tile_height: int = 512) -> str:
    """URL of one tile (XY orientation) exactly as CATMAID's front-end builds it.

    ``image_base`` is used as given, like the front-end does (CATMAID's admin expects it to end
    with ``/`` for the path-based layouts).
    """
    t = tile_source_type
    base = image_base
    ext = file_extension
    if t in (1, 9):
        return f'{base}{z}/{row}_{col}_{zoom}.{ext}'
    if t == 2:
        # jQuery.param keeps the object's key order; scale is 1 / 2**zoom.
        scale = 1 / (1 << zoom)
        query = urlencode([
            ('x', col * tile_width), ('y', row * tile_height),
            ('width', tile_width), ('height', tile_height),
            ('row', 'y'), ('col', 'x'),
            ('scale', _js_number(scale)), ('z', z),
        ])
        return f'{base}?{query}'
    if t == 4:
        return f'{base}{z}/{zoom}/{row}_{col}.{ext}'
    if t == 5:
        return f'{base}{zoom}/{z}/{row}/{col}.{ext}'
    if t == 6:
        return f'{base}{tile_width}_{tile_height}/{col * tile_width}_{row * tile_height}_{z}/{ext}'
    if t == 7:
        return f'{base}largeDataTileSource/{tile_width}/{tile_height}/{zoom}/{z}/{row}/{col}.{ext}'
    if t == 8:
        return f'{base}xy/{zoom}/{col}_{row}_{z}'
    if t == 10:
        # String.prototype.replace with a string pattern replaces the first occurrence only.
        url = (base.replace('%SCALE_DATASET%', f's{zoom}', 1)
               .replace('%AXIS_0%', str(col * tile_width), 1)
               .replace('%AXIS_1%', str(row * tile_height), 1)
               .replace('%AXIS_2%', str(z), 1))
        return f'{url}.{ext}'
    raise UnsupportedLayout(unsupported_reason(t))


def canary_url(tile_source_type: int, image_base: str, file_extension: str, canary: dict[str, int],
               tile_width: int = 512, tile_height: int = 512) -> str:
    """The canary tile URL of a mirror for a stack's canary location ``{x, y, z}`` (zoom 0)."""
    col, row = canary_tile(int(canary.get('x', 0)), int(canary.get('y', 0)), tile_width, tile_height)
    return tile_url(tile_source_type, image_base, file_extension, int(canary.get('z', 0)), col, row,
                    zoom=0, tile_width=tile_width, tile_height=tile_height)


def classify(http_status: Optional[int], image_format: Optional[str], require_image: bool = True) -> str:
    """Status of an answered request: ``ok``, ``not_image`` or ``http_error``.

    The front-end uses a mirror when its canary loads as an image, so a 2xx answer whose body is
    not an image (see :func:`sniff_image`; an HTML error page, an empty body) does not count
    unless ``require_image`` is off. The declared content type plays no part: browsers decide
    by the bytes.
    """
    if http_status is None or not 200 <= http_status < 300:
        return 'http_error'
    if require_image and not image_format:
        return 'not_image'
    return 'ok'


# Bytes of the body that sniff_image needs at most (a JPEG's frame header can follow large
# EXIF or ICC segments).
SNIFF_BYTES = 256 * 1024
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def sniff_image(data: bytes, complete: bool = True) -> tuple[Optional[str], str]:
    """Which image format a browser would decode ``data`` (the start of a body) as.

    Returns ``(format, detail)``: ``format`` is ``jpeg``, ``png``, ``gif``, ``webp``, ``bmp``,
    ``tiff`` or ``avif`` and ``detail`` the size (``WxH``) where the header gives it; or ``None``
    and why it is not an image. The magic bytes decide, as in browsers, and the header after them
    must be valid (PNG: IHDR with its CRC; JPEG: a frame header before the scan; GIF, WebP, BMP:
    non-zero dimensions). ``complete`` says ``data`` is the whole body (a JPEG frame header
    beyond the bytes read is then missing, not just unread).
    """
    if not data:
        return None, 'empty body'
    sniffers = ((b'\x89PNG\r\n\x1a\n', _png), (b'\xff\xd8\xff', _jpeg), (b'GIF87a', _gif), (b'GIF89a', _gif),
                (b'BM', _bmp), (b'II*\x00', _tiff), (b'MM\x00*', _tiff))
    for magic, sniff in sniffers:
        if data.startswith(magic):
            return sniff(data, complete)
    if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
        return _webp(data, complete)
    if data[4:8] == b'ftyp' and data[8:12] in (b'avif', b'avis'):
        return 'avif', 'AVIF'
    return None, f'no image format starts with {data[:16]!r}'


def _png(data: bytes, _complete: bool) -> tuple[Optional[str], str]:
    if len(data) < 33 or data[12:16] != b'IHDR' or struct.unpack('>I', data[8:12])[0] != 13:
        return None, 'PNG signature without a complete IHDR header (truncated or damaged)'
    if zlib.crc32(data[12:29]) != struct.unpack('>I', data[29:33])[0]:
        return None, 'PNG header fails its CRC (damaged)'
    width, height = struct.unpack('>II', data[16:24])
    if not width or not height:
        return None, f'PNG of {width}x{height} pixels'
    return 'png', f'{width}x{height}'


def _jpeg(data: bytes, complete: bool) -> tuple[Optional[str], str]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None, f'JPEG with a damaged segment at byte {i}'
        marker = data[i + 1]
        if marker == 0xFF:          # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        if marker in (0xD9, 0xDA):
            return None, 'JPEG without a frame header before its image data'
        length = struct.unpack('>H', data[i + 2:i + 4])[0]
        if marker in _JPEG_SOF:
            if i + 9 > len(data):
                break
            height, width = struct.unpack('>HH', data[i + 5:i + 9])
            if not width:
                return None, 'JPEG frame of width 0'
            return 'jpeg', f'{width}x{height}'
        if length < 2:
            return None, f'JPEG with a damaged segment at byte {i}'
        i += 2 + length
    if not complete:
        return 'jpeg', 'JPEG (frame header beyond the bytes read)'
    return None, 'JPEG cut off before its frame header'


def _gif(data: bytes, _complete: bool) -> tuple[Optional[str], str]:
    if len(data) < 13:
        return None, 'GIF cut off in its header'
    width, height = struct.unpack('<HH', data[6:10])
    if not width or not height:
        return None, f'GIF of {width}x{height} pixels'
    return 'gif', f'{width}x{height}'


def _webp(data: bytes, _complete: bool) -> tuple[Optional[str], str]:
    chunk = data[12:16]
    if len(data) < 30:
        return None, 'WebP cut off in its header'
    if chunk == b'VP8X':
        width = 1 + int.from_bytes(data[24:27], 'little')
        height = 1 + int.from_bytes(data[27:30], 'little')
    elif chunk == b'VP8L' and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], 'little')
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b'VP8 ' and data[23:26] == b'\x9d\x01\x2a':
        width = struct.unpack('<H', data[26:28])[0] & 0x3FFF
        height = struct.unpack('<H', data[28:30])[0] & 0x3FFF
    else:
        return None, f'WebP with an unknown first chunk {chunk!r}'
    if not width or not height:
        return None, f'WebP of {width}x{height} pixels'
    return 'webp', f'{width}x{height}'


def _bmp(data: bytes, _complete: bool) -> tuple[Optional[str], str]:
    if len(data) < 26:
        return None, 'BMP cut off in its header'
    header = struct.unpack('<I', data[14:18])[0]
    if header == 12:
        width, height = struct.unpack('<HH', data[18:22])
    elif header in (40, 52, 56, 64, 108, 124):
        width, height = struct.unpack('<ii', data[18:26])
    else:
        return None, f'BM followed by no known BMP header (size {header})'
    if width <= 0 or not height:
        return None, f'BMP of {width}x{height} pixels'
    return 'bmp', f'{width}x{abs(height)}'


def _tiff(data: bytes, _complete: bool) -> tuple[Optional[str], str]:
    order = '<' if data[:2] == b'II' else '>'
    if len(data) < 8:
        return None, 'TIFF cut off in its header'
    offset = struct.unpack(order + 'I', data[4:8])[0]
    if offset < 8:
        return None, 'TIFF with a bad first directory offset'
    size = {}
    if offset + 2 <= len(data):
        count = struct.unpack(order + 'H', data[offset:offset + 2])[0]
        for n in range(count):
            at = offset + 2 + 12 * n
            if at + 12 > len(data):
                break
            tag, kind = struct.unpack(order + 'HH', data[at:at + 4])
            if tag in (256, 257):
                size[tag] = struct.unpack(order + ('H' if kind == 3 else 'I'), data[at + 8:at + (10 if kind == 3 else 12)])[0]
    if size.get(256) == 0 or size.get(257) == 0:
        return None, 'TIFF of 0 pixels'
    # Of the major browsers only Safari displays TIFF.
    dims = f'{size[256]}x{size[257]}, ' if 256 in size and 257 in size else ''
    return 'tiff', f'{dims}TIFF (only Safari displays it)'


def order_mirrors(mirrors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mirrors in the order the front-end tries them: by ``position`` when given, else as listed.

    The sort is stable; mirrors without a position keep their place after those with one.
    """
    indexed = list(enumerate(mirrors))
    indexed.sort(key=lambda item: (item[1].get('position') is None,
                                   item[1].get('position') if item[1].get('position') is not None else 0,
                                   item[0]))
    return [mirror for _index, mirror in indexed]


def choose(results: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The mirror the front-end would use: the first whose canary answered ``ok``."""
    for result in results:
        if result.get('status') == 'ok':
            return result
    return None


def _js_number(value: float) -> str:
    """A number as JavaScript's String() writes it (1 -> '1', 0.5 -> '0.5')."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
