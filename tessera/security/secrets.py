"""Authenticated encryption of provider credentials at rest.

AES-256-GCM with a key id in every ciphertext, so keys can be rotated: the newest key
encrypts, every listed key still decrypts. The row's id is bound in as associated data,
so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "tsr1"


class SecretKeyError(Exception):
    """The key material is missing, malformed, or cannot open a ciphertext."""


@dataclass(frozen=True)
class SecretBox:
    """Encrypts with the first key, decrypts with whichever key id a ciphertext names."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretKeyError("no credential key configured")
        for key_id, key in self.keys:
            if len(key) != 32 or not key_id.isalnum():
                raise SecretKeyError(f"credential key {key_id!r} must be 32 bytes, id alphanumeric")

    @classmethod
    def parse(cls, spec: str) -> SecretBox:
        """From 'id:base64key,id2:base64key2' (newest first)."""
        keys: list[tuple[str, bytes]] = []
        for item in filter(None, (part.strip() for part in spec.replace("\n", ",").split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise SecretKeyError("credential keys are written as id:base64key")
            try:
                keys.append((key_id, base64.b64decode(encoded, validate=True)))
            except ValueError as exc:
                raise SecretKeyError(f"credential key {key_id!r} is not base64") from exc
        return cls(tuple(keys))

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> SecretBox:
        """Read the key file, creating it with one fresh key (mode 0600) if asked."""
        if not path.exists():
            if not create:
                raise SecretKeyError(f"credential key file {path} does not exist")
            path.parent.mkdir(parents=True, exist_ok=True)
            line = f"k{secrets.token_hex(4)}:{base64.b64encode(os.urandom(32)).decode()}\n"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(line)
        return cls.parse(path.read_text())

    def encrypt(self, plaintext: str, *, bound_to: str) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), bound_to.encode())
        return f"{_PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, ciphertext: str, *, bound_to: str) -> str:
        prefix, _, rest = ciphertext.partition(":")
        key_id, _, payload = rest.partition(":")
        if prefix != _PREFIX or not payload:
            raise SecretKeyError("not a Tessera ciphertext")
        key = dict(self.keys).get(key_id)
        if key is None:
            raise SecretKeyError(f"credential key {key_id!r} is not configured")
        raw = base64.b64decode(payload)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], bound_to.encode()).decode()
        except InvalidTag as exc:
            raise SecretKeyError("ciphertext failed authentication") from exc
