"""No Flower process outlives the command that started it: SIGKILL a node, SIGTERM the SuperLink.

A real ``cesagram server start`` (TLS, SuperNode authentication) and one registered
``cesagram node start`` on loopback; no run is submitted. The node command is killed with
SIGKILL (the OOM killer, a crashed shell): its SuperNode and Flower's SuperExec under it
must go too. Then the SuperLink gets SIGTERM (systemd, ``timeout``): it and its SuperExec go.
Every process is looked up by PID and killed by PID in the end, whatever happened.
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
from federation.flower_processes import FlowerProcess, descendants, flower_env, free_port, process_name, wait_https_ready
from federation.pki import generate_node_keys
from tests.processes import kill_all, left_after

pytestmark = pytest.mark.slow


def _conversation(i: int) -> str:
    """A benign chat; the node is killed before it trains, so only its data check reads these."""
    texts = ["hi", "how was school?", "fine, we had maths", "see you tomorrow"]
    messages = [{"author": f"u{j % 2}", "text": text, "time": f"18:{j:02d}"} for j, text in enumerate(texts)]
    return json.dumps({"id": f"c{i}", "label": 0, "messages": messages})


def _tree(process: FlowerProcess) -> dict[int, str]:
    return {pid: process_name(pid) for pid in descendants(process.pid)}


def test_sigkilled_node_leaves_no_supernode_and_sigtermed_superlink_leaves_nothing(tmp_path: Path) -> None:
    env = flower_env(tmp_path / "flwr-home", {"CESAGRAM_CACHE_DIR": str(tmp_path / "cache")})
    address = f"127.0.0.1:{free_port()}"
    certs, ledger = tmp_path / "certs", tmp_path / "node.json"
    assert cesagram(["server", "certs", str(certs), "--host", "127.0.0.1"]) == 0
    generate_node_keys(tmp_path / "keys")
    assert cesagram(["node", "init", str(ledger), "--cap", "10"]) == 0
    data = tmp_path / "node.jsonl"
    data.write_text("".join(_conversation(i) + "\n" for i in range(12)), encoding="utf-8")
    superlink = FlowerProcess(
        [sys.executable, "-m", "cesagram", "server", "start", "--certs", str(certs), "--host", "127.0.0.1",
         "--port", address.rsplit(":", 1)[1], "--database", str(tmp_path / "superlink.db")],
        env=env, log_path=tmp_path / "superlink.log", cwd=tmp_path,
    )  # fmt: skip
    node = FlowerProcess(
        [sys.executable, "-m", "cesagram", "node", "start", "--superlink", address, "--ca", str(certs / "ca.crt"),
         "--key", str(tmp_path / "keys" / "node.key"), "--data", str(data),
         "--ledger", str(ledger), "--cap", "10", "--runtime-port", str(free_port())],
        env=env, log_path=tmp_path / "node.log", cwd=tmp_path,
    )  # fmt: skip
    seen: dict[int, str] = {}
    try:
        superlink.start()
        wait_https_ready(address, ca_path=certs / "ca.crt", process=superlink, timeout_s=60)
        assert cesagram(["server", "register", str(tmp_path / "keys" / "node.pub"), "--superlink", address, "--ca", str(certs / "ca.crt")]) == 0
        node.start()
        deadline = time.monotonic() + 90
        while "SuperNode ID:" not in node.output() or "flower-superexe" not in _tree(node).values():
            assert node.poll() is None, node.output()[-3000:]
            assert time.monotonic() < deadline, f"the node did not connect within 90 s:\n{node.output()[-3000:]}"
            time.sleep(0.3)

        node_tree = _tree(node)
        seen.update(node_tree)
        os.kill(node.pid, signal.SIGKILL)  # the command only: no clean-up runs in it
        node.wait(timeout=10)
        assert left_after(node_tree, timeout_s=15) == {}, node.output()[-2000:]

        server_tree = {superlink.pid: process_name(superlink.pid), **_tree(superlink)}
        seen.update(server_tree)
        assert "flower-superexe" in server_tree.values(), server_tree
        os.kill(superlink.pid, signal.SIGTERM)  # `server start` became flower-superlink (exec)
        superlink.wait(timeout=30)
        assert left_after(server_tree, timeout_s=15) == {}, superlink.output()[-2000:]
    finally:
        kill_all(list(seen))
        node.kill()
        superlink.kill()
