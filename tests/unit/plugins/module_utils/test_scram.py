# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 verifiers and SASLprep, checked against verifiers PostgreSQL 15 computed."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.catmaid.replication.plugins.module_utils import _scram

# Recorded from a throw-away PostgreSQL 15.x cluster (UTF8 database unless noted):
#   SET password_encryption = 'scram-sha-256'; CREATE ROLE vN PASSWORD '<password>';
#   SELECT rolpassword FROM pg_authid WHERE rolname = 'vN';
# The server ran its own SASLprep on each password, so these pin our normalisation to its.
PG_VECTORS = [
    pytest.param('pw', 'SCRAM-SHA-256$4096:/9pOB73+mNNeRCnv90mKlw==$4drKnMJgnsdLfI6D8QIkRhFbfio7l54kka1c6/jI3c4='
                 ':yFlzCAU6LOt2nSSepEmV2R7wa5hkVu3wp1PBFnljbjk=', id='ascii'),
    pytest.param('repl-secret', 'SCRAM-SHA-256$4096:D4qrub4jTEg0vWC7gE7PUA==$x9OyjAeQw4MdSFoUh2JNXVZOBPCkm0htVcVpmmyRZZk='
                 ':GmHCqcXDcb3WZKPV0tXRBXloXWJ6GBl3+kQppSSIg94=', id='ascii-dash'),
    pytest.param('it\'s \\ "q"', 'SCRAM-SHA-256$4096:m5+LK00RB9RYnWJ+7cLo8Q==$qAvMtnNC1q1+VlmOeFwKQ6wCprq5nv0JzbS3hDByQXs='
                 ':7iSnCksrFewE31w2T89teMXwVM4WY5UE604qEsGUQzc=', id='quotes-backslash'),
    pytest.param('\u00fcn\u00efc\u00f6d\u00e9', 'SCRAM-SHA-256$4096:ClxK2vrsr5juhsKJxzaLRg==$k3n4kc6meOQsnMZ4HKcsv6xvyXRnxorUWAhmJPKo0TQ='
                 ':DnGngHK5GgMbzqmvzX+8+6enG2X1SrDIRK4EHUV7uas=', id='latin1-accents'),
    pytest.param('\ufb01\u00a0x', 'SCRAM-SHA-256$4096:CUpaBXHpcO6lFf+TYua+Bw==$eCE6xBZ2W9GugZAWs7lGa/znV+KKxI4QetNVeogV+Yg='
                 ':rZoiIWbIPpoNhhpc6NrYSPINKigOLRoiEyvzRQaoAqM=', id='nfkc-ligature-nbsp'),
    pytest.param('I\u00adX', 'SCRAM-SHA-256$4096:bFIx0Fc/9mA9KZzaUKPDiA==$p6UpQ97SUjdpbUlmzzqiw0E0yzF7UDtctDIcvU4SZ1Y='
                 ':L0zJ1Z0tCY/bY0vi7v+6dtCNQI/TaXQYzBn7ebv48k4=', id='soft-hyphen-mapped-to-nothing'),
    pytest.param('\u2168', 'SCRAM-SHA-256$4096:nQibVu9HoK7wH185J5VzFw==$xpN+VNbgIpUkfCC5WgkrHjmpt1g4QidckkB+1qFVwPE='
                 ':HvD0WFEPtUnfOg9GQaNegCWlJAJ8mjllwaxNPSHnEQM=', id='roman-numeral-nfkc'),
    pytest.param('a\u0007\u00e9', 'SCRAM-SHA-256$4096:GIH/bROyOna73XSy0w84VQ==$fK7Ncs8Oc+EvLJn8//YT2j30xnVEBP2pNYxxKHmRvbU='
                 ':ZijR6WC8d9mqHUqJ7Hg9d1E52qDUqfEWRd8Y4bio5S4=', id='control-char-prohibited-raw'),
    pytest.param('\u06271\u0628', 'SCRAM-SHA-256$4096:h2cI4mKAXRwXnVNMgvpJAQ==$JcPSZLo6GEd7zENYSwiO4cUl2Dp0pzeNn7eicky7ThY='
                 ':Sb5NgDrb2n3oSHKW4CEEwfQ0JdLxy5S7qKyJvVXRb/E=', id='bidi-ok'),
    pytest.param('\u06271', 'SCRAM-SHA-256$4096:4afFHIuExHjC4NZWzCky/Q==$7s2A0ITrTYVz3o1v/3QNiAIFCBlXncNmW7H150bDKpk='
                 ':nNLiBRHKFfu8CpRmHdZnN8zXthSW33weWiBB92CmfuM=', id='bidi-bad-last-raw'),
    pytest.param('x\u200b\u00e9', 'SCRAM-SHA-256$4096:9IJE5warhdxOsri1tSoVlQ==$CvxXUcgbX2EaMtwkRh1/6IQRYm4CbMY6VXzvyyWjiOY='
                 ':FochGccCbQ/ZSEzew/l7Y9zLGJS+/AaXPuJP6CgDSBQ=', id='zero-width-space'),
    pytest.param('\u00aa', 'SCRAM-SHA-256$4096:/07lmBY0a0P9JWEr+1+hKQ==$crTwp+Osiiz9Uy2bZNVaQy+33W1wQrIA5WUSV1nSA5U='
                 ':e5/rcLr0rlmt6FtvKqN5reR7uJqPgNSmlxXN3Gd0MpM=', id='feminine-ordinal'),
    pytest.param('\u2168\ufeff', 'SCRAM-SHA-256$4096:RG6HQ3nK5dz1CqA1Mc8bpw==$ECPhI0YVa4KmsAb4MIEFMi7IPoz0D3jO0oyy/3o8H+s='
                 ':M595dvgcxf7J7SHUR8tD3ZAoJUUwt5bwewmaccK8N1M=', id='bom-mapped-to-nothing'),
    pytest.param('\U0001F600pw', 'SCRAM-SHA-256$4096:0AWGnDMQknln46zrbQCctA==$G1GNNq5dni2hxog36HFDkrDqJEc/WEINhCTPbkVdx3E='
                 ':u1Xigfa/S0vhT1XrcqauU0Y2dkz96Ns3zz2xFRhb+jY=', id='emoji-unassigned-in-3.2-raw'),
    pytest.param('\uff46\uff55\uff4c\uff4c', 'SCRAM-SHA-256$4096:4BErMXhAMvqNFuR4HxkNlA==$fXQitWHWF0+KQXQnHXPL+a6QlYKTrVsoIEHquKp2lwQ='
                 ':4v/xxIZ7p6ZbbmoPr+VEwm/9u4bRkRK5rLzL38whuiE=', id='fullwidth'),
    # SQL_ASCII database, client_encoding SQL_ASCII, E'\xff\xfeab\xc3': invalid UTF-8 -> raw bytes.
    pytest.param(b'\xff\xfeab\xc3', 'SCRAM-SHA-256$4096:q5Blh8Htc36fnTaaxVFN3Q==$PrOn4AOCoeWHEZaLdvwZhZNTpr8gOK8jkFpM/yBLyW8='
                 ':B6HAizbWwLz8/ropqv8jTd+7g8bALW9BTFuUUkW0ZCQ=', id='invalid-utf8-raw'),
    # Same database, E'\xc2\xad' (a lone soft hyphen): maps to nothing -> raw bytes.
    pytest.param('\u00ad', 'SCRAM-SHA-256$4096:XoU8sswanaJ3C0FDyOI/1g==$FM3sMlk+wN6FF1tZJb4Uo47vuZaM12gn8RyMif9V+nM='
                 ':/vKt8W65JyzEMNL9QIXV4DIO0rWSukCTHb8UtwMYuL0=', id='only-mapped-to-nothing-raw'),
]

# SET password_encryption = 'md5'; CREATE ROLE m PASSWORD 'pw'  (md5 of 'pw' || 'm')
PG_MD5 = 'md57764e463c73a54e4bb79b9b9e419e145'


@pytest.mark.parametrize('password, verifier', PG_VECTORS)
def test_compute_matches_postgresql(password, verifier):
    secret = _scram.parse_verifier(verifier)
    assert secret is not None
    assert _scram.build_verifier(password, salt=secret.salt, iterations=secret.iterations) == verifier


@pytest.mark.parametrize('password, verifier', PG_VECTORS)
def test_verify_accepts_postgresql_verifier(password, verifier):
    assert _scram.verify(password, verifier) is True


@pytest.mark.parametrize('password, verifier', PG_VECTORS)
def test_verify_rejects_other_password(password, verifier):
    other = password + (b'x' if isinstance(password, bytes) else 'x')
    assert _scram.verify(other, verifier) is False


def test_rfc7677_example_vector():
    # RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
    # The proof in the RFC is derived from these keys; check them through the ServerSignature.
    salt = base64.b64decode('W22ZaJ0SNY7soEsUEjb6gQ==')
    secret = _scram.compute_secret('pencil', salt, 4096)
    auth_message = (b'n=user,r=rOprNGfwEbeRWgbNEkqO,'
                    b'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,'
                    b'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0')
    import hashlib
    import hmac
    server_signature = hmac.new(secret.server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature).decode() == '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='


def test_build_verifier_random_salt_and_format():
    one = _scram.build_verifier('secret')
    two = _scram.build_verifier('secret')
    assert one != two                                  # fresh salt each time
    for verifier in (one, two):
        secret = _scram.parse_verifier(verifier)
        assert secret is not None
        assert secret.iterations == 4096
        assert len(secret.salt) == 16
        assert verifier.startswith('SCRAM-SHA-256$4096:')
        assert _scram.verify('secret', verifier)
        assert 'secret' not in verifier


def test_other_iteration_count_is_honoured():
    verifier = _scram.build_verifier('pw', salt=b'0123456789abcdef', iterations=1000)
    assert verifier.startswith('SCRAM-SHA-256$1000:')
    assert _scram.verify('pw', verifier)
    assert not _scram.verify('pw', verifier.replace('$1000:', '$4096:'))


@pytest.mark.parametrize('bad', [
    None, '', 'pw', PG_MD5, 'SCRAM-SHA-256$', 'SCRAM-SHA-1$4096:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',
    'SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 43 + '=',                               # no ServerKey
    'SCRAM-SHA-256$abc:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',              # iterations not a number
    'SCRAM-SHA-256$0:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',                # zero iterations
    'SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 40 + '==:' + 'A' * 43 + '=',            # StoredKey too short
    'SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 44 + 'AAAA',          # ServerKey too long
    'SCRAM-SHA-256$4096:c2Fsd!==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',             # salt not base64
    'SCRAM-SHA-256$4096:c2FsdA=$' + 'A' * 43 + '=:' + 'A' * 43 + '=',              # bad padding
    'SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 43 + '=\n',           # trailing newline
    ' SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 43 + '=:' + 'A' * 43 + '=',            # leading space
    12345,
])
def test_malformed_verifiers(bad):
    assert _scram.parse_verifier(bad) is None
    assert _scram.verify('pw', bad) is False


def test_well_formed_minimal_verifier_parses():
    text = 'SCRAM-SHA-256$4096:c2FsdA==$' + 'A' * 43 + '=:' + 'B' * 42 + 'A='
    secret = _scram.parse_verifier(text)
    assert secret == _scram.ScramSecret(4096, b'salt', bytes(32), secret.server_key)
    assert secret.format() == text


@pytest.mark.parametrize('stored, expected', [
    (PG_MD5, 'md5'),
    ('md5' + '0' * 32, 'md5'),
    ('md5' + 'A' * 32, 'unknown'),        # PostgreSQL only writes lower-case hex
    ('md5' + '0' * 31, 'unknown'),
    ('md5' + '0' * 33, 'unknown'),
    (PG_VECTORS[0].values[1], 'scram-sha-256'),
    (None, None),
    ('plain', 'unknown'),
])
def test_password_type(stored, expected):
    assert _scram.password_type(stored) == expected
    assert _scram.is_md5(stored) is (expected == 'md5')


def test_md5_hash_never_verifies():
    assert _scram.verify('pw', PG_MD5) is False


@pytest.mark.parametrize('password, prepared', [
    ('pw', b'pw'),
    ('a\x07b', b'a\x07b'),                            # pure ASCII: untouched, even control chars
    ('\u00fcber', '\u00fcber'.encode()),
    ('u\u0308ber', '\u00fcber'.encode()),             # NFKC composes
    ('\ufb01', b'fi'),                                # compatibility ligature
    ('\uff21\uff22', b'AB'),                          # full width
    ('a\u00a0b\u3000c', b'a b c'),                    # non-ASCII spaces -> SPACE
    ('a\u00adb\u200dc\ufeff\u00e9', 'abc\u00e9'.encode()),   # mapped to nothing
    ('a\u200bb', b'a b'),                            # ZERO WIDTH SPACE is in C.1.2 too: PostgreSQL maps it to SPACE
    ('\u06271\u0628', '\u06271\u0628'.encode()),      # RandALCat first and last
    ('\u05d0\u05d1', '\u05d0\u05d1'.encode()),
])
def test_saslprep_prepares(password, prepared):
    assert _scram.saslprep(password) == prepared
    assert _scram.prepare_password(password) == prepared


@pytest.mark.parametrize('password', [
    pytest.param('\u00e9\x07', id='ascii-control'),
    pytest.param('\u00e9\u0085', id='non-ascii-control'),
    pytest.param('\u00e9\ue000', id='private-use'),
    pytest.param('\u00e9\ufffe', id='non-character'),
    pytest.param('\u00e9\ufff9', id='inappropriate-plain-text'),
    pytest.param('\u00e9\u2ff0', id='ideographic-description'),
    pytest.param('\u00e9\u200e', id='display-property'),
    pytest.param('\u00e9\U000e0001', id='tagging'),
    pytest.param('\u00e9\u0221', id='unassigned-in-3.2'),
    pytest.param('\u0627a\u0628', id='bidi-mixed-with-lcat'),
    pytest.param('\u06271', id='bidi-last-not-randal'),
    pytest.param('1\u0627', id='bidi-first-not-randal'),
    pytest.param('\u00ad\ufeff\u200d', id='maps-to-empty'),
    pytest.param(b'\xff\xfe', id='invalid-utf8'),
    pytest.param(b'\xed\xa0\x80\xc3\xa9', id='utf8-encoded-surrogate'),
])
def test_saslprep_prohibited_falls_back_to_raw(password):
    assert _scram.saslprep(password) is None
    assert _scram.prepare_password(password) == _scram.password_bytes(password)


def test_password_bytes_handles_surrogate_escapes():
    raw = b'ab\xff'
    assert _scram.password_bytes(raw.decode('utf-8', 'surrogateescape')) == raw
    assert _scram.password_bytes('\u00e9') == b'\xc3\xa9'


@pytest.mark.parametrize('salt, iterations', [(b'', 4096), (b'salt', 0), (b'salt', -1)])
def test_compute_secret_rejects_bad_parameters(salt, iterations):
    with pytest.raises(ValueError):
        _scram.compute_secret('pw', salt, iterations)


@pytest.mark.parametrize('password, prepared', [
    ('pass\u213b', None),              # U+213B is unassigned in Unicode 3.2 (NFKC: "FAX")
    ('A\U0001f130b-\u00e9', None),     # U+1F130 likewise
    ('x\u00e9\u0341', None),           # U+0341 is prohibited (C.8), NFKC makes it U+0301
    ('\ufb1d', '\u05d9\u05b4'),        # R before NFKC; the normalised form ends in a mark
])
def test_saslprep_checks_before_normalising_as_postgresql(password, prepared):
    # Issue 14: PostgreSQL checks the mapped characters, not the NFKC result; where SASLprep
    # fails the raw UTF-8 bytes are hashed.
    expected = prepared.encode('utf-8') if prepared is not None else None
    assert _scram.saslprep(password) == expected
    assert _scram.prepare_password(password) == (expected or password.encode('utf-8'))
