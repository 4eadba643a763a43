# Copyright: (c) 2026, catmaid.replication developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SCRAM-SHA-256 password verifiers in PostgreSQL's format (RFC 5802 / RFC 7677).

The verifier is what PostgreSQL stores in ``pg_authid.rolpassword``::

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

Computing it on the managed host lets a module send only the verifier to the server, so the
plain-text password never reaches the server or its log. The password is normalised the way
PostgreSQL's ``pg_saslprep()`` (src/common/saslprep.c) and libpq do it: pure ASCII is used as
is; otherwise SASLprep (RFC 4013) maps and NFKC-normalises the password and checks the mapped
(not yet normalised) characters, and when the password is not valid UTF-8 or SASLprep
prohibits it, the raw bytes are used instead.

Only the Python standard library is used. This file is private to the collection: its names
may change without notice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata
from typing import NamedTuple, Optional, Union

SCHEME = 'SCRAM-SHA-256'
DEFAULT_ITERATIONS = 4096   # PostgreSQL's default scram_iterations
SALT_LENGTH = 16            # PostgreSQL's SCRAM_DEFAULT_SALT_LEN
KEY_LENGTH = 32             # SHA-256 digest size

_B64 = r'[A-Za-z0-9+/]+={0,2}'
_VERIFIER_RE = re.compile(rf'{SCHEME}\$([0-9]+):({_B64})\$({_B64}):({_B64})')
_MD5_RE = re.compile(r'md5[0-9a-f]{32}')

Password = Union[str, bytes]


class ScramSecret(NamedTuple):
    """The parts of a SCRAM-SHA-256 verifier."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def format(self) -> str:
        """The verifier text, exactly as PostgreSQL writes it."""
        enc = [base64.b64encode(v).decode('ascii') for v in (self.salt, self.stored_key, self.server_key)]
        return f'{SCHEME}${self.iterations}:{enc[0]}${enc[1]}:{enc[2]}'


def password_bytes(password: Password) -> bytes:
    """The password as the bytes a client would send (UTF-8 for text)."""
    if isinstance(password, bytes):
        return password
    try:
        return password.encode('utf-8', 'surrogateescape')
    except UnicodeEncodeError:
        return password.encode('utf-8', 'surrogatepass')


def _prohibited(char: str) -> bool:
    """RFC 4013 section 2.3 (prohibited output) plus RFC 3454 A.1 (unassigned code points)."""
    return (stringprep.in_table_c12(char) or stringprep.in_table_c21_c22(char)
            or stringprep.in_table_c3(char) or stringprep.in_table_c4(char)
            or stringprep.in_table_c5(char) or stringprep.in_table_c6(char)
            or stringprep.in_table_c7(char) or stringprep.in_table_c8(char)
            or stringprep.in_table_c9(char) or stringprep.in_table_a1(char))


def saslprep(password: Password) -> Optional[bytes]:
    """PostgreSQL's ``pg_saslprep()``: the prepared password, or None when it cannot be prepared.

    None means "not valid UTF-8" or "prohibited by SASLprep" (including a password that maps
    to nothing); PostgreSQL then uses the raw bytes, see :func:`prepare_password`.
    """
    raw = password_bytes(password)
    if all(byte < 0x80 for byte in raw):
        return raw              # pure ASCII needs no processing, as in PostgreSQL
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        return None
    # 1) Map: non-ASCII spaces to SPACE, "commonly mapped to nothing" removed.
    mapped = []
    for char in text:
        if stringprep.in_table_c12(char):
            mapped.append(' ')
        elif not stringprep.in_table_b1(char):
            mapped.append(char)
    if not mapped:
        return None             # PostgreSQL refuses an empty result
    # 2) Normalise with NFKC.
    prepared = unicodedata.normalize('NFKC', ''.join(mapped))
    # 3) Prohibit and 4) bidirectional characters (RFC 3454 section 6). PostgreSQL checks the
    # mapped characters before normalisation, not the normalised result: a character unassigned
    # in Unicode 3.2 (U+213B) or prohibited (U+0341) that NFKC would turn into an allowed one
    # still makes SASLprep fail, and then the raw bytes are hashed.
    if any(_prohibited(char) for char in mapped):
        return None
    if any(stringprep.in_table_d1(char) for char in mapped):
        if any(stringprep.in_table_d2(char) for char in mapped):
            return None
        if not (stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return None
    return prepared.encode('utf-8')


def prepare_password(password: Password) -> bytes:
    """The bytes PostgreSQL hashes: SASLprep's result, or the raw bytes when that fails."""
    prepared = saslprep(password)
    return prepared if prepared is not None else password_bytes(password)


def compute_secret(password: Password, salt: bytes, iterations: int = DEFAULT_ITERATIONS) -> ScramSecret:
    """StoredKey and ServerKey of ``password`` for the given salt and iteration count."""
    if iterations < 1:
        raise ValueError('iterations must be at least 1')
    if not salt:
        raise ValueError('salt must not be empty')
    salted = hashlib.pbkdf2_hmac('sha256', prepare_password(password), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return ScramSecret(iterations, salt, stored_key, server_key)


def build_verifier(password: Password, salt: Optional[bytes] = None,
                   iterations: int = DEFAULT_ITERATIONS) -> str:
    """A new verifier for ``password``; a random 16-byte salt unless one is given."""
    if salt is None:
        salt = os.urandom(SALT_LENGTH)
    return compute_secret(password, salt, iterations).format()


def parse_verifier(stored: Optional[str]) -> Optional[ScramSecret]:
    """Split a stored SCRAM-SHA-256 verifier into its parts; None when it is not one."""
    if not isinstance(stored, str):
        return None
    match = _VERIFIER_RE.fullmatch(stored)
    if match is None:
        return None
    try:
        parts = [base64.b64decode(match.group(i), validate=True) for i in (2, 3, 4)]
    except (binascii.Error, ValueError):
        return None
    iterations = int(match.group(1))
    salt, stored_key, server_key = parts
    if iterations < 1 or not salt or len(stored_key) != KEY_LENGTH or len(server_key) != KEY_LENGTH:
        return None
    return ScramSecret(iterations, salt, stored_key, server_key)


def verify(password: Password, stored: Optional[str]) -> bool:
    """Whether the stored SCRAM-SHA-256 verifier belongs to ``password``.

    Recomputes the keys with the stored salt and iteration count. False for anything that is
    not a well-formed SCRAM-SHA-256 verifier (an md5 hash, NULL, garbage).
    """
    secret = parse_verifier(stored)
    if secret is None:
        return False
    mine = compute_secret(password, secret.salt, secret.iterations)
    return (hmac.compare_digest(mine.stored_key, secret.stored_key)
            and hmac.compare_digest(mine.server_key, secret.server_key))


def is_md5(stored: Optional[str]) -> bool:
    """Whether the stored value is an md5 hash (``md5`` and 32 lower-case hex digits)."""
    return isinstance(stored, str) and _MD5_RE.fullmatch(stored) is not None


def password_type(stored: Optional[str]) -> Optional[str]:
    """``scram-sha-256``, ``md5``, None (no password) or ``unknown`` for anything else."""
    if stored is None:
        return None
    if parse_verifier(stored) is not None:
        return 'scram-sha-256'
    if is_md5(stored):
        return 'md5'
    return 'unknown'
