# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""URL layouts of CATMAID tile sources, as the front-end's tile-source.js builds them."""

from __future__ import annotations

import io

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils import _mirrors as m

BASE = 'https://img.example.org/stack1/'


@pytest.mark.parametrize('x,y,tw,th,expected', [
    (0, 0, 512, 512, (0, 0)),
    (511, 511, 512, 512, (0, 0)),
    (512, 1023, 512, 512, (1, 1)),
    (1300, 700, 256, 512, (5, 1)),
])
def test_canary_tile_is_floor_division(x, y, tw, th, expected):
    assert m.canary_tile(x, y, tw, th) == expected


@pytest.mark.parametrize('tw,th', [(0, 512), (512, 0), (-1, 5)])
def test_canary_tile_rejects_non_positive_sizes(tw, th):
    with pytest.raises(ValueError):
        m.canary_tile(1, 1, tw, th)


# canary {x: 1300, y: 700, z: 7} with 256x256 tiles -> col 5, row 2, zoom 0
CANARY = {'x': 1300, 'y': 700, 'z': 7}


@pytest.mark.parametrize('tst,base,ext,expected', [
    (1, BASE, 'jpg', BASE + '7/2_5_0.jpg'),
    (9, BASE, 'png', BASE + '7/2_5_0.png'),
    (4, BASE, 'jpg', BASE + '7/0/2_5.jpg'),
    (5, BASE, 'png', BASE + '0/7/2/5.png'),
    (2, 'https://volumina.example.org/tile', 'jpg',
     'https://volumina.example.org/tile?x=1280&y=512&width=256&height=256&row=y&col=x&scale=1&z=7'),
    (6, 'https://dvid.example.org/api/node/3f8c/grayscale/raw/0_1/', 'jpg:80',
     'https://dvid.example.org/api/node/3f8c/grayscale/raw/0_1/256_256/1280_512_7/jpg:80'),
    (7, 'https://render.example.org/render-ws/v1/owner/o/project/p/stack/s/', 'png',
     'https://render.example.org/render-ws/v1/owner/o/project/p/stack/s/largeDataTileSource/256/256/0/7/2/5.png'),
    (8, 'https://dvid.example.org/api/node/3f8c/tiles/tile/', 'jpg',
     'https://dvid.example.org/api/node/3f8c/tiles/tile/xy/0/5_2_7'),
    (10, 'https://h2n5.example.org/data.n5/%SCALE_DATASET%/0_1_2/%AXIS_0%_%AXIS_1%_%AXIS_2%/256_256_1', 'jpg',
     'https://h2n5.example.org/data.n5/s0/0_1_2/1280_512_7/256_256_1.jpg'),
])
def test_canary_url_layouts(tst, base, ext, expected):
    assert m.canary_url(tst, base, ext, CANARY, 256, 256) == expected


def test_default_canary_is_origin_tile():
    assert m.canary_url(1, BASE, 'jpg', {}) == BASE + '0/0_0_0.jpg'


def test_base_is_used_as_given_like_the_front_end():
    # No slash is added: the front-end concatenates too, and a broken base must show up as broken.
    assert m.canary_url(1, 'https://img.example.org/stack1', 'jpg', {'z': 3}) == 'https://img.example.org/stack13/0_0_0.jpg'


@pytest.mark.parametrize('zoom,expected', [(0, 'scale=1'), (1, 'scale=0.5'), (2, 'scale=0.25')])
def test_request_source_scale_matches_javascript_numbers(zoom, expected):
    assert expected in m.tile_url(2, 'http://h/t', 'jpg', 0, 0, 0, zoom=zoom)


def test_tile_url_uses_zoom_level_where_the_layout_has_one():
    assert m.tile_url(1, BASE, 'jpg', 3, 4, 5, zoom=2) == BASE + '3/5_4_2.jpg'
    assert m.tile_url(4, BASE, 'jpg', 3, 4, 5, zoom=2) == BASE + '3/2/5_4.jpg'
    assert m.tile_url(5, BASE, 'jpg', 3, 4, 5, zoom=2) == BASE + '2/3/5/4.jpg'
    assert m.tile_url(10, 'h/%SCALE_DATASET%/%AXIS_0%', 'jpg', 0, 1, 0, zoom=3, tile_width=10) == 'h/s3/10.jpg'


@pytest.mark.parametrize('tst,words', [
    (3, 'HDF5'),
    (11, 'N5'),
    (12, 'unknown'),
    (0, 'unknown'),
])
def test_unsupported_layouts_say_why(tst, words):
    with pytest.raises(m.UnsupportedLayout) as info:
        m.canary_url(tst, BASE, 'jpg', CANARY)
    assert words in str(info.value)
    assert str(tst) in str(info.value)


def test_every_supported_type_builds_a_url():
    for tst in m.SUPPORTED_TYPES:
        assert m.canary_url(tst, BASE, 'jpg', CANARY).startswith(BASE)
    assert not set(m.SUPPORTED_TYPES) & set(m.KNOWN_UNSUPPORTED)


@pytest.mark.parametrize('code,fmt,require_image,expected', [
    (200, 'jpeg', True, 'ok'),
    (204, None, False, 'ok'),
    (200, None, True, 'not_image'),
    (200, None, False, 'ok'),
    (404, None, True, 'http_error'),
    (500, 'png', False, 'http_error'),
    (None, None, True, 'http_error'),
])
def test_classify(code, fmt, require_image, expected):
    assert m.classify(code, fmt, require_image) == expected


def _pillow(fmt: str, size=(20, 10), **save) -> bytes:
    pil = pytest.importorskip('PIL.Image')
    out = io.BytesIO()
    pil.new('RGB', size, (10, 200, 30)).save(out, format=fmt, **save)
    return out.getvalue()


@pytest.mark.parametrize('fmt,save,expected', [
    ('JPEG', {}, 'jpeg'),
    ('JPEG', {'progressive': True}, 'jpeg'),
    ('PNG', {}, 'png'),
    ('GIF', {}, 'gif'),
    ('WEBP', {'lossless': True}, 'webp'),
    ('WEBP', {'lossless': False}, 'webp'),
    ('BMP', {}, 'bmp'),
    ('TIFF', {}, 'tiff'),
])
def test_sniff_finds_every_browser_format_and_its_size_from_the_bytes(fmt, save, expected):
    found, detail = m.sniff_image(_pillow(fmt, **save))
    assert found == expected
    assert detail.startswith('20x10')


def test_sniff_reads_a_jpeg_frame_header_after_a_large_exif_segment():
    data = _pillow('JPEG')
    app1 = b'\xff\xe1' + (2 + 60000).to_bytes(2, 'big') + b'Exif\0\0' + b'\0' * 59994
    assert m.sniff_image(data[:2] + app1 + data[2:]) == ('jpeg', '20x10')
    # Only the first bytes were read: a frame header further on is not held against the image.
    assert m.sniff_image((data[:2] + app1)[:4096], complete=False)[0] == 'jpeg'


@pytest.mark.parametrize('data,words', [
    (b'', 'empty body'),
    (b'<!DOCTYPE html><html><body>404</body></html>', 'no image format starts with'),
    (b'{"error": "no such tile"}', 'no image format'),
    (b'\x89PNG\r\n\x1a\n', 'IHDR'),
    (b'\xff\xd8\xff', 'cut off before its frame header'),
    (b'\xff\xd8\xff\xda\x00\x08' + b'\0' * 6, 'without a frame header'),
    (b'GIF89a\x00\x00\x00\x00\x00\x00\x00', '0x0'),
    (b'RIFF\x10\x00\x00\x00WEBPJUNK' + b'\0' * 20, 'unknown first chunk'),
    (b'BM' + b'\0' * 30, 'no known BMP header'),
    (b'II*\x00\x00\x00\x00\x00', 'bad first directory offset'),
])
def test_sniff_rejects_what_no_browser_decodes(data, words):
    found, detail = m.sniff_image(data)
    assert found is None and words in detail


def test_sniff_rejects_a_png_whose_header_is_damaged():
    data = bytearray(_pillow('PNG'))
    data[17] ^= 0xFF                       # width changed, CRC no longer matches
    assert m.sniff_image(bytes(data)) == (None, 'PNG header fails its CRC (damaged)')


def test_order_by_position_is_stable_and_keeps_unpositioned_last():
    mirrors = [{'title': 'a'}, {'title': 'b', 'position': 2}, {'title': 'c', 'position': 0},
               {'title': 'd'}, {'title': 'e', 'position': 2}]
    assert [x['title'] for x in m.order_mirrors(mirrors)] == ['c', 'b', 'e', 'a', 'd']


def test_order_without_positions_is_the_list_order():
    mirrors = [{'title': t, 'position': None} for t in 'zyx']
    assert [x['title'] for x in m.order_mirrors(mirrors)] == ['z', 'y', 'x']


def test_choose_first_ok_in_order():
    results = [{'title': 'a', 'status': 'unreachable'}, {'title': 'b', 'status': 'not_image'},
               {'title': 'c', 'status': 'ok'}, {'title': 'd', 'status': 'ok'}]
    assert m.choose(results)['title'] == 'c'
    assert m.choose(results[:2]) is None
    assert m.choose([]) is None
