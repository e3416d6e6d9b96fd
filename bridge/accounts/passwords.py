"""Password hashing with argon2id (argon2-cffi's RFC 9106 defaults).

Hashes carry their own parameters, so raising the cost later only needs
:func:`needs_rehash`: the next successful sign-in stores a new hash.
"""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# The module's hasher; tests may swap in a cheaper one (argon2.profiles.CHEAPEST).
hasher = PasswordHasher()

_dummy: tuple[PasswordHasher, str] | None = None


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; a malformed hash is a mismatch."""
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the current ones."""
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def burn_verify(password: str) -> None:
    """Spend a verification's time on nothing, so an unknown username answers as slowly as a known one."""
    global _dummy
    if _dummy is None or _dummy[0] is not hasher:
        _dummy = (hasher, hasher.hash("not a password of anyone"))
    verify_password(_dummy[1], password)
