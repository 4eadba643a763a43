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


def classify(http_status: Optional[int], content_type: Optional[str], require_image: bool = True) -> str:
    """Status of an answered request: ``ok``, ``not_image`` or ``http_error``.

    The front-end uses a mirror when its canary loads as an image, so a 2xx answer that is not
    an image (an HTML error page, say) does not count unless ``require_image`` is off.
    """
    if http_status is None or not 200 <= http_status < 300:
        return 'http_error'
    if require_image and not (content_type or '').lower().startswith('image/'):
        return 'not_image'
    return 'ok'


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
