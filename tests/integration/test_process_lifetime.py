"""No Flower process outlives the command that started it, on SIGTERM as on SIGKILL.

A real ``cesagram server start`` (TLS, SuperNode authentication), two registered
``cesagram node start`` and a ``cesagram server run`` on loopback. Each command gets its
signal alone (as from ``timeout``, systemd or the OOM killer), and everything it had started
must go: ``server run`` its ``flwr run`` (SIGTERM); a node its SuperNode and Flower's
SuperExec and ClientApps, killed outright (SIGKILL) or stopped (SIGTERM); the SuperLink its
SuperExec and the run's ServerApp (SIGTERM). Every process is found and killed by PID.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cesagram.cli import main as cesagram
from deploy.flower_processes import FlowerProcess, descendants, flower_env, free_port, process_name, wait_https_ready
from deploy.pki import generate_node_keys
from tests.processes import kill_all, left_after

pytestmark = pytest.mark.slow


def _conversation(i: int) -> str:
    """A benign chat: the nodes are stopped before any training could matter."""
    texts = ["hi", "how was school?", "fine, we had maths", "see you tomorrow"]
    messages = [{"author": f"u{j % 2}", "text": text, "time": f"18:{j:02d}"} for j, text in enumerate(texts)]
    return json.dumps({"id": f"c{i}", "label": 0, "messages": messages})


def _tree(process: FlowerProcess) -> dict[int, str]:
    return {pid: process_name(pid) for pid in descendants(process.pid)}


def _wait_for(what: str, done, process: FlowerProcess, timeout_s: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not done():
        assert process.poll() is None, process.output()[-3000:]
        assert time.monotonic() < deadline, f"{what} not within {timeout_s:g} s:\n{process.output()[-3000:]}"
        time.sleep(0.3)


def test_no_flower_process_outlives_its_command_on_sigterm_or_sigkill(tmp_path: Path) -> None:
    """Two nodes, a run submitted; then SIGTERM `server run`, SIGKILL one node, SIGTERM the other and the SuperLink."""
    env = flower_env(tmp_path / "flwr-home", {"CESAGRAM_CACHE_DIR": str(tmp_path / "cache")})
    address = f"127.0.0.1:{free_port()}"
    certs, ca = tmp_path / "certs", tmp_path / "certs" / "ca.crt"
    assert cesagram(["server", "certs", str(certs), "--host", "127.0.0.1"]) == 0
    data = tmp_path / "node.jsonl"
    data.write_text("".join(_conversation(i) + "\n" for i in range(12)), encoding="utf-8")

    def spawn(name: str, *args: str) -> FlowerProcess:
        return FlowerProcess([sys.executable, "-m", "cesagram", *args], env=env, log_path=tmp_path / f"{name}.log", cwd=tmp_path)

    superlink = spawn("superlink", "server", "start", "--certs", str(certs), "--host", "127.0.0.1",
                      "--port", address.rsplit(":", 1)[1], "--database", str(tmp_path / "superlink.db"))  # fmt: skip
    nodes = {}
    for name in ("killed", "stopped"):
        generate_node_keys(tmp_path / name)
        assert cesagram(["node", "init", str(tmp_path / f"{name}.json"), "--cap", "10"]) == 0
        nodes[name] = spawn(
            name, "node", "start", "--superlink", address, "--ca", str(ca), "--key", str(tmp_path / name / "node.key"),
            "--data", str(data), "--ledger", str(tmp_path / f"{name}.json"), "--cap", "10", "--name", name,
            "--runtime-port", str(free_port()),
        )  # fmt: skip
    run = spawn(
        "run", "server", "run", "model=ngram", "pretrain.enabled=false", f"federation.superlink={address}",
        f"federation.root_certificates={ca}",
        "federation.nodes=2", "federation.wait_for_nodes_s=60", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    seen: dict[int, str] = {}

    def stop(process: FlowerProcess, sig: int, *, also: dict[int, str] | None = None) -> int:
        """Send ``sig`` to the command alone; return its status once it and everything under it are gone."""
        tree = {**(also or {}), **_tree(process)}
        seen.update(tree)
        os.kill(process.pid, sig)
        status = process.wait(timeout=30)
        assert left_after(tree, timeout_s=15) == {}, process.output()[-2000:]
        return status

    try:
        superlink.start()
        wait_https_ready(address, ca_path=ca, process=superlink, timeout_s=60)
        run.start()  # it waits for the nodes (federation.wait_for_nodes_s): all start together
        keys = [str(tmp_path / name / "node.pub") for name in nodes]
        assert cesagram(["server", "register", *keys, "--superlink", address, "--ca", str(ca)]) == 0
        for node in nodes.values():
            node.start()
        for name, node in nodes.items():
            _wait_for(f"node {name} connected", lambda n=node: "SuperNode ID:" in n.output() and "flower-superexe" in _tree(n).values(), node)  # type: ignore[misc]
        _wait_for("the run on the SuperLink", lambda: "flwr" in _tree(run).values() and "flwr-serverapp" in _tree(superlink).values(), run)

        assert stop(run, signal.SIGTERM) == 128 + signal.SIGTERM  # `server run`: its `flwr run` goes
        assert "stopped by SIGTERM" in run.output()
        stop(nodes["killed"], signal.SIGKILL)  # the OOM killer: no clean-up runs in the command
        assert stop(nodes["stopped"], signal.SIGTERM) == 0 and "node stopped" in nodes["stopped"].output()
        assert "flower-superexe" in _tree(superlink).values()
        stop(superlink, signal.SIGTERM, also={superlink.pid: "flower-superlink"})  # `server start` became it (exec)
    finally:
        kill_all(list(seen))
        for process in (run, *nodes.values(), superlink):
            process.kill()
