"""Keys and certificates for a pilot federation: a CA, the SuperLink's TLS certificate, node keys.

A pilot needs three things that an organisation's own PKI would otherwise provide:

- a certificate authority (``ca.crt``) that every node operator receives and trusts;
- the SuperLink's TLS certificate and key, signed by that CA, naming every host name or
  IP address the nodes dial (plus ``localhost`` and ``127.0.0.1``: the SuperLink's own
  helper processes reach it on loopback);
- one key pair per node for SuperNode authentication: the private key stays at the node,
  the public key goes to the coordinator, who registers it with the SuperLink.

Flower reads the TLS files as PEM and the node keys in OpenSSH format on a NIST curve
(``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register``); this
module writes exactly those formats with the ``cryptography`` package. Nothing here
contacts a network.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.checks import is_integer
from federation.errors import ConfigError
from federation.io import atomic_write_bytes

__all__ = [
    "CA_CERT",
    "CA_PRIVATE_DIR",
    "NODE_PRIVATE_KEY",
    "NODE_PUBLIC_KEY",
    "SERVER_CERT",
    "SERVER_KEY",
    "PilotCertificates",
    "check_ca_certificate",
    "check_node_private_key",
    "check_node_public_key",
    "generate_node_keys",
    "generate_pilot_certificates",
]

log = logging.getLogger(__name__)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
#: The CA's private key lives in a folder of its own, apart from what the SuperLink reads,
#: so that it can be moved offline whole (``server start`` never needs it).
CA_PRIVATE_DIR = "ca-private"
CA_PRIVATE_NOTE = (
    "This folder holds the federation CA's private key. The SuperLink never needs it: move\n"
    "the folder offline (an encrypted USB key, a safe) and bring it back only to sign a new\n"
    "SuperLink certificate. Anyone holding ca.key can impersonate the SuperLink to every node.\n"
)
SERVER_CERT = "superlink.crt"
SERVER_KEY = "superlink.key"
NODE_PRIVATE_KEY = "node.key"
NODE_PUBLIC_KEY = "node.pub"

#: Names every SuperLink certificate carries: the SuperLink's own helpers dial it on loopback.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class PilotCertificates:
    """Where :func:`generate_pilot_certificates` wrote the pilot's files."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    hosts: tuple[str, ...]


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate or public key, readable by everyone."""
    atomic_write_bytes(path, data)
    os.chmod(path, 0o644)


def _refuse_overwrite(paths: Sequence[Path], what: str) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise ConfigError(
            f"{existing[0]} already exists; {what} are never overwritten: choose an empty folder "
            "or move the old files away first"
        )


def _subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _check_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for host in hosts:
        host = host.strip()
        if not host or (any(c in host for c in " /:@") and not _is_ip(host)):
            raise ConfigError(
                f"--host {host!r} is not a host name or IP address; give the name nodes dial, "
                "e.g. --host superlink.example.org"
            )
        if host not in cleaned:
            cleaned.append(host)
    for name in LOOPBACK_NAMES:
        if name not in cleaned:
            cleaned.append(name)
    return tuple(cleaned)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def generate_pilot_certificates(
    out_dir: Path,
    *,
    hosts: Sequence[str],
    valid_days: int = 365,
    organisation: str = "CESAGRAM-FL pilot",
    ca_passphrase: bytes | None = None,
) -> PilotCertificates:
    """Write a pilot CA and a SuperLink certificate for ``hosts`` into ``out_dir``.

    Parameters
    ----------
    out_dir
        Folder for ``ca.crt``, ``superlink.crt`` and ``superlink.key``, and
        ``ca-private/ca.key`` (its own folder, mode 0700); created if missing. Existing
        files are never overwritten.
    hosts
        Host names or IP addresses under which nodes reach the SuperLink. ``localhost``
        and ``127.0.0.1`` are always added.
    valid_days
        Validity of both certificates.
    organisation
        Organisation name written into the certificates' subjects.
    ca_passphrase
        When given, ``ca.key`` is encrypted with it (PKCS#8, the ``cryptography``
        package's best available encryption).

    Returns
    -------
    PilotCertificates
        The paths written and the host names the server certificate covers.

    Notes
    -----
    Keys are ECDSA P-384. ``ca.key`` signs certificates and must stay with the
    coordinator (offline, ideally); only ``ca.crt`` goes to node operators. Private keys
    are written with mode 0600. An organisation with its own PKI skips this and passes
    its own CA, certificate and key to ``cesagram server start``.
    """
    if not is_integer(valid_days, numpy=False) or valid_days < 1:
        raise ConfigError(f"--valid-days {valid_days!r} must be a positive integer")
    names = _check_hosts(hosts)
    out_dir = Path(out_dir)
    paths = PilotCertificates(
        ca_cert=out_dir / CA_CERT,
        ca_key=out_dir / CA_PRIVATE_DIR / CA_KEY,
        server_cert=out_dir / SERVER_CERT,
        server_key=out_dir / SERVER_KEY,
        hosts=names,
    )
    _refuse_overwrite(
        [paths.ca_cert, paths.ca_key, out_dir / CA_KEY, paths.server_cert, paths.server_key], "certificates and keys"
    )
    if ca_passphrase is not None and len(ca_passphrase) < 8:
        raise ConfigError("the CA key's passphrase must have at least 8 characters")
    now = dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(minutes=5)  # tolerate small clock differences between machines
    end = now + dt.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation} CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )

    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )

    pem = serialization.Encoding.PEM
    no_password = serialization.NoEncryption()
    ca_protection = (
        serialization.BestAvailableEncryption(ca_passphrase) if ca_passphrase is not None else no_password
    )
    paths.ca_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.ca_key.parent, 0o700)
    _write_private(paths.ca_key, ca_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, ca_protection))
    atomic_write_bytes(paths.ca_key.parent / "README.txt", CA_PRIVATE_NOTE.encode("utf-8"))
    _write_private(paths.server_key, server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, no_password))
    _write_public(paths.ca_cert, ca_cert.public_bytes(pem))
    _write_public(paths.server_cert, server_cert.public_bytes(pem))
    log.info("pilot CA and SuperLink certificate for %s written to %s", ", ".join(names), out_dir)
    return paths


def generate_node_keys(out_dir: Path) -> tuple[Path, Path]:
    """Write a node's authentication key pair (``node.key``, ``node.pub``) into ``out_dir``.

    Returns
    -------
    tuple of Path
        The private key (OpenSSH format, mode 0600) and the public key (one OpenSSH line).

    Notes
    -----
    ECDSA on NIST P-384, the curve Flower's documentation uses. The private key never
    leaves the node; the SuperNode signs each request with it, and the SuperLink
    accepts only nodes whose public key the coordinator registered. Existing keys are
    never overwritten: a replaced key would lock the node out until re-registered.
    """
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / NODE_PRIVATE_KEY, out_dir / NODE_PUBLIC_KEY
    _refuse_overwrite([private_path, public_path], "node keys")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write_private(private_path, private)
    _write_public(public_path, public + b"\n")
    return private_path, public_path


def _read(path: Path, what: str, fix: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found; {fix}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what} ({error.strerror}); {fix}") from None


def check_ca_certificate(path: Path) -> x509.Certificate:
    """Load a PEM CA certificate (the first of a bundle), or raise a one-line ConfigError."""
    data = _read(path, "CA certificate", "pass the ca.crt the coordinator sent you with --ca")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(
            f"{path}: not a PEM certificate; pass the coordinator's CA certificate (ca.crt), not a key"
        ) from None
    return certificates[0]


def check_node_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load a node's OpenSSH EC private key as Flower will, or raise a one-line ConfigError."""
    data = _read(path, "node private key", "create one with `cesagram node keygen DIR` (DIR/node.key)")
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise ConfigError(
            f"{path}: not an unencrypted OpenSSH EC private key; pass the node.key written by "
            "`cesagram node keygen` (not node.pub)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: Flower needs an EC (NIST curve) key; create one with `cesagram node keygen DIR`")
    return key


def check_node_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Load a node's OpenSSH EC public key as ``flwr supernode register`` will."""
    data = _read(path, "node public key", "ask the node operator for the node.pub of `cesagram node keygen`")
    try:
        key = serialization.load_ssh_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{path}: not an OpenSSH public key; register the node.pub, never node.key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(f"{path}: Flower needs an EC (NIST curve) public key; the node must use `cesagram node keygen`")
    return key
