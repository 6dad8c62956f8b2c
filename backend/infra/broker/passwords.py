"""MQTT passwords: random, shown once, stored only as a Mosquitto-compatible hash.

The hash is Mosquitto's own `$7$` format (PBKDF2-SHA512,
`$7$<iterations>$<base64 12-byte salt>$<base64 64-byte hash>`), so the very string in
the database is what the Mosquitto password file holds and what the embedded broker's
auth plugin verifies against: one secret format for both brokers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SALT_BYTES = 12
HASH_BYTES = 64
# Device passwords carry 192 random bits, so the iteration count adds nothing against
# guessing; it is kept moderate because a broker verifies it on every CONNECT.
# (mosquitto_passwd itself uses 101.)
ITERATIONS = 1000


def generate_password() -> str:
    """A new device password: 24 random bytes (192 bits), URL-safe text."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches a `$7$` hash; False for anything malformed."""
    try:
        _, kind, iterations, salt_b64, hash_b64 = encoded.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = base64.b64decode(hash_b64, validate=True)
        rounds = int(iterations)
    except (ValueError, binascii.Error):
        return False
    if rounds < 1 or not expected:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, len(expected))
    return hmac.compare_digest(digest, expected)
