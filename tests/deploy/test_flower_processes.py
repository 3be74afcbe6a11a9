"""What the Flower processes get from us: the TLS probe, addresses, the app folder, connections; stopping a tree by PID."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.flower_processes import alive, parse_address, probe_tls, process_name, stop_tree, write_app_dir, write_connection
from deploy.pki import generate_pilot_certificates
from federation.errors import ConfigError, DeploymentError
from tests.processes import kill_all, left_after


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


# -- stopping a tree by PID --------------------------------------------------------------------
def _session_with_sleepers(*, leave: bool) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A shell in its own session that starts two ``sleep`` children (and exits at once if ``leave``)."""
    script = "sleep 300 & echo $!; sleep 300 & echo $!" + ("" if leave else "; wait")
    shell = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True)  # noqa: S603
    assert shell.stdout is not None
    pids = [int(shell.stdout.readline()) for _ in range(2)]
    shell.stdout.close()
    deadline = time.monotonic() + 10.0  # `$!` is known before the child has exec'd sleep
    while time.monotonic() < deadline and any(process_name(pid) != "sleep" for pid in pids):
        time.sleep(0.02)
    return shell, pids


@pytest.mark.parametrize("leave", [False, True], ids=["parent running", "parent already exited"])
def test_stop_tree_stops_the_children_of_its_session(leave: bool) -> None:
    """Even when the parent has exited (its children reparented, no longer its descendants) they are stopped."""
    shell, pids = _session_with_sleepers(leave=leave)
    try:
        if leave:
            shell.wait(timeout=10)
        assert all(alive(pid) and process_name(pid) == "sleep" for pid in pids)
        stop_tree(shell, grace_s=5.0)
        assert left_after({pid: "sleep" for pid in pids}, timeout_s=5.0) == {}
        assert shell.poll() is not None
    finally:
        kill_all(pids)
        if shell.poll() is None:
            shell.kill()
            shell.wait()
