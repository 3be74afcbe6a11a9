"""The pilot PKI: the CA, the SuperLink's certificate, node keys, and one-line errors for mixed-up files."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from flwr.cli.supernode.register import try_load_public_key

from deploy.pki import (
    check_ca_certificate,
    check_node_private_key,
    check_node_public_key,
    generate_node_keys,
    generate_pilot_certificates,
)
from federation.errors import ConfigError


def test_pilot_certificate_chains_to_ca_and_names_hosts(pilot) -> None:  # type: ignore[no-untyped-def]
    ca = check_ca_certificate(pilot.ca_cert)
    cert = x509.load_pem_x509_certificate(pilot.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"superlink.example.org", "localhost"}
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"10.0.0.5", "127.0.0.1"}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert pilot.ca_key.stat().st_mode & 0o077 == 0
    assert pilot.server_key.stat().st_mode & 0o077 == 0


def test_pilot_certificates_are_never_overwritten(pilot) -> None:  # type: ignore[no-untyped-def]
    before = pilot.ca_cert.read_bytes()
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_pilot_certificates(pilot.ca_cert.parent, hosts=["other"])
    assert pilot.ca_cert.read_bytes() == before


@pytest.mark.parametrize("host", ["", "bad host", "http://x", "user@host"])
def test_bad_host_names_are_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="--host"):
        generate_pilot_certificates(tmp_path, hosts=[host])


def test_node_keys_load_the_way_flower_loads_them(tmp_path: Path) -> None:
    private, public = generate_node_keys(tmp_path)
    key = load_ssh_private_key(private.read_bytes(), None)
    assert key.public_key().public_numbers() == load_ssh_public_key(public.read_bytes()).public_numbers()
    assert try_load_public_key(public)  # what `flwr supernode register` does with the file
    assert check_node_private_key(private).curve.name == "secp384r1"
    assert check_node_public_key(public).curve.name == "secp384r1"
    assert private.stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_node_keys(tmp_path)


def test_key_and_certificate_mixups_are_one_line_errors(tmp_path: Path, pilot) -> None:  # type: ignore[no-untyped-def]
    private, public = generate_node_keys(tmp_path)
    with pytest.raises(ConfigError, match="not node.pub"):
        check_node_private_key(public)
    with pytest.raises(ConfigError, match="never node.key"):
        check_node_public_key(private)
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        check_ca_certificate(private)
    with pytest.raises(ConfigError, match="not found"):
        check_ca_certificate(tmp_path / "missing.crt")
