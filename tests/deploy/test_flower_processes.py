"""What the Flower processes get from us without starting any: the TLS probe, addresses, the app folder, connections."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.flower_processes import parse_address, probe_tls, write_app_dir, write_connection
from deploy.pki import generate_pilot_certificates
from federation.errors import ConfigError, DeploymentError


# -- probes ------------------------------------------------------------------------------------
@pytest.fixture()
def tls_server(pilot) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A loopback TLS server presenting the pilot's SuperLink certificate (accepts, then closes)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pilot.server_cert, pilot.server_key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_probe_accepts_the_right_ca_and_names_the_wrong_one(tls_server: str, pilot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    probe_tls(tls_server, ca_path=pilot.ca_cert, timeout_s=5)
    other = generate_pilot_certificates(tmp_path / "other", hosts=["x"])
    with pytest.raises(DeploymentError, match="did not sign") as caught:
        probe_tls(tls_server, ca_path=other.ca_cert, timeout_s=5)
    assert "\n" not in str(caught.value)


def test_probe_names_an_unreachable_superlink(pilot) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(DeploymentError, match="unreachable"):
            probe_tls(f"127.0.0.1:{port}", ca_path=pilot.ca_cert, timeout_s=2)


@pytest.mark.parametrize("address", ["localhost", "host:port", ":9092", "h:70000"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(address)


# -- what Flower receives ----------------------------------------------------------------------
def test_app_dir_and_connection_files(tmp_path: Path) -> None:
    import tomllib

    write_app_dir(tmp_path / "app", {"rounds": 2, "deployment.secagg.enabled": True}, clientapp="clients.secagg:app")
    project = tomllib.loads((tmp_path / "app" / "pyproject.toml").read_text())
    assert project["tool"]["flwr"]["app"]["components"]["clientapp"] == "clients.secagg:app"
    assert project["tool"]["flwr"]["app"]["config"] == {"rounds": 2, "deployment.secagg.enabled": True}
    name = write_connection(tmp_path / "home", address="127.0.0.1:9092", root_certificates=tmp_path / "ca.crt")
    config = tomllib.loads((tmp_path / "home" / "config.toml").read_text())
    assert config["superlink"]["default"] == name
    assert config["superlink"][name]["root-certificates"] == str((tmp_path / "ca.crt").resolve())
    assert "insecure" not in config["superlink"][name]
