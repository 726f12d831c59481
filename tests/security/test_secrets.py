from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from tessera.security.secrets import SecretBox, SecretKeyError


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_round_trip_and_ciphertext_hides_the_password() -> None:
    box = SecretBox.parse(f"k1:{_key()}")
    sealed = box.encrypt("vc-pass-123", bound_to="row-1")
    assert "vc-pass-123" not in sealed
    assert box.decrypt(sealed, bound_to="row-1") == "vc-pass-123"
    assert box.encrypt("vc-pass-123", bound_to="row-1") != sealed  # fresh nonce each time


def test_ciphertext_moved_to_another_row_does_not_open() -> None:
    box = SecretBox.parse(f"k1:{_key()}")
    sealed = box.encrypt("secret", bound_to="row-1")
    with pytest.raises(SecretKeyError, match="authentication"):
        box.decrypt(sealed, bound_to="row-2")


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox.parse(f"k1:{_key()}")
    sealed = box.encrypt("secret", bound_to="r")
    head, _, payload = sealed.rpartition(":")
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1
    with pytest.raises(SecretKeyError):
        box.decrypt(f"{head}:{base64.b64encode(bytes(raw)).decode()}", bound_to="r")


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old, new = _key(), _key()
    sealed_old = SecretBox.parse(f"k1:{old}").encrypt("secret", bound_to="r")
    rotated = SecretBox.parse(f"k2:{new},k1:{old}")
    assert rotated.decrypt(sealed_old, bound_to="r") == "secret"
    assert rotated.encrypt("secret", bound_to="r").startswith("tsr1:k2:")
    with pytest.raises(SecretKeyError, match="not configured"):
        SecretBox.parse(f"k2:{new}").decrypt(sealed_old, bound_to="r")


def test_key_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    box = SecretBox.from_file(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox.from_file(path).decrypt(box.encrypt("x", bound_to="r"), bound_to="r") == "x"


@pytest.mark.parametrize(
    "spec", ["", "k1", "k1:not base64!", "k1:" + base64.b64encode(b"short").decode()]
)
def test_bad_key_material_is_refused(spec: str) -> None:
    with pytest.raises(SecretKeyError):
        SecretBox.parse(spec)
