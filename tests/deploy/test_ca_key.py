"""``cesagram server certs``: the CA's private key in a folder of its own, optionally encrypted."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from cesagram.cli import main
from deploy.pki import CA_PRIVATE_DIR, generate_pilot_certificates


def test_ca_key_is_kept_apart_from_what_the_superlink_reads(tmp_path: Path) -> None:
    paths = generate_pilot_certificates(tmp_path / "certs", hosts=["superlink.test"])
    assert paths.ca_key == tmp_path / "certs" / CA_PRIVATE_DIR / "ca.key"
    assert stat.S_IMODE(paths.ca_key.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.ca_key.stat().st_mode) == 0o600
    assert "offline" in (paths.ca_key.parent / "README.txt").read_text()
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == [CA_PRIVATE_DIR, "ca.crt", "superlink.crt", "superlink.key"]
    serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)


def test_ca_key_encrypted_with_a_passphrase_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "passphrase.txt"
    secret.write_text("correct horse battery\n")
    assert main(["server", "certs", str(tmp_path / "certs"), "--host", "superlink.test", "--ca-passphrase-file", str(secret)]) == 0
    assert "encrypted with your passphrase" in capsys.readouterr().out
    key = (tmp_path / "certs" / CA_PRIVATE_DIR / "ca.key").read_bytes()
    assert b"ENCRYPTED" in key
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(key, password=None)
    serialization.load_pem_private_key(key, password=b"correct horse battery")


def test_a_short_passphrase_is_refused_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "passphrase.txt"
    secret.write_text("short\n")
    assert main(["server", "certs", str(tmp_path / "certs"), "--host", "h.test", "--ca-passphrase-file", str(secret)]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert not (tmp_path / "certs" / "ca.crt").exists()
