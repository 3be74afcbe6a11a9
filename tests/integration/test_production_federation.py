"""Production federation end to end: a real SuperLink and real SuperNodes on loopback.

Everything goes through the commands a coordinator and node operators run
(``cesagram server certs|start|register|run|resume``, ``cesagram node keygen|start``),
which start Flower's own processes (``flower-superlink``, ``flower-supernode``,
``flwr run``) with TLS and SuperNode authentication. Only 127.0.0.1 is used.

One SuperLink with three SuperNodes serves the whole module; a test that starts more
processes stops them itself. Every process is started in its own session and stopped,
with everything it spawned, by PID (``FlowerProcess.stop``), on failure too. ``FLWR_HOME``
lives in the test's temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.metadata import Metadata

from federation.data.synthetic import SynthSettings, generate_federation
from deploy.pki import generate_node_keys
from deploy.flower_processes import FlowerProcess, flower_bin, flower_env, free_port, wait_https_ready
from federation.privacy.ledger import PrivacyLedger
from federation.privacy.node_policy import NodePolicy, secret_path_for

pytestmark = pytest.mark.slow

KINDS = ("hotline", "police", "platform")
ROUND_TIMEOUT_S = 300  # generous: each message starts a ClientApp process (torch import) on 2 busy cores
#: The module's nodes are a test federation's: they also accept runs without DP (the SecAgg+
#: test needs deterministic training). The malicious-coordinator tests add nodes with the
#: default policy (record-level DP-SGD only).
TEST_POLICY = ("--accept-privacy", "record", "--accept-privacy", "none", "--allow-test-privacy")


@dataclass
class Federation:
    """The module's federation: folders, the SuperLink and its nodes, and every process started."""

    root: Path
    env: dict[str, str]
    port: int
    processes: list[FlowerProcess] = field(default_factory=list)
    superlink: FlowerProcess | None = None
    nodes: dict[str, FlowerProcess] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.root / "certs" / "ca.crt"

    def cesagram(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cesagram", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(self, name: str, *args: str) -> FlowerProcess:
        process = FlowerProcess(
            [sys.executable, "-m", "cesagram", *args], env=self.env, log_path=self.root / "logs" / f"{name}.log", cwd=self.root
        )
        self.processes.append(process)
        return process.start()

    def start_superlink(self) -> None:
        self.superlink = self.spawn(
            "superlink",
            "server", "start", "--certs", "certs", "--host", "127.0.0.1", "--port", str(self.port),
            "--database", str(self.root / "state" / "superlink.db"),
        )  # fmt: skip
        wait_https_ready(self.address, ca_path=self.ca, process=self.superlink, timeout_s=90)

    def init_ledger(self, name: str, cap: float = 20.0) -> None:
        if not self.ledger(name).exists():
            done = self.cesagram("node", "init", str(self.ledger(name)), "--cap", str(cap))
            assert done.returncode == 0, done.stderr

    def start_node(
        self, name: str, *, key_dir: Path, data: Path, kind: str, cap: float = 20.0, policy: tuple[str, ...] = TEST_POLICY
    ) -> FlowerProcess:
        self.init_ledger(name, cap)
        process = self.spawn(
            name,
            "node", "start", "--superlink", self.address, "--ca", str(self.ca), "--key", str(key_dir / "node.key"),
            "--data", str(data), "--ledger", str(self.ledger(name)), "--cap", str(cap), "--name", name,
            "--kind", kind, "--runtime-port", str(free_port()), *policy,
        )  # fmt: skip
        self.nodes[name] = process
        return process

    def ledger(self, name: str) -> Path:
        return self.root / "ledgers" / f"{name}.json"

    def wait_connected(self, names: list[str], timeout_s: float = 120) -> None:
        """Wait until each node's SuperNode has been admitted (it logs its node id)."""
        deadline = time.monotonic() + timeout_s
        waiting = list(names)
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                process = self.nodes[name]
                assert process.poll() is None, f"{name} exited:\n{process.output()[-3000:]}"
                if "SuperNode ID:" in process.output():
                    waiting.remove(name)
            time.sleep(0.5)
        assert not waiting, f"not connected within {timeout_s} s: {waiting}"

    def run_args(self, run_dir: Path, *overrides: str) -> list[str]:
        return [
            "server", "run", "model=ngram", "pretrain.enabled=false", f"federation.superlink={self.address}",
            f"federation.root_certificates={self.ca}", "federation.wait_for_nodes_s=120",
            f"timeout_s={ROUND_TIMEOUT_S}", f"hydra.run.dir={run_dir}", *overrides,
        ]  # fmt: skip

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(grace_s=5)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    root = tmp_path_factory.mktemp("production")
    env = flower_env(root / "flwr-home", {"CESAGRAM_CACHE_DIR": str(root / "cache")})
    fed = Federation(root=root, env=env, port=free_port())
    for folder in ("state", "ledgers", "logs"):
        (root / folder).mkdir()
    try:
        assert fed.cesagram("server", "certs", "certs", "--host", "superlink.test").returncode == 0
        settings = SynthSettings(seed=3, conversations_per_node=40, test_conversations=40, min_node_conversations=24, max_messages=30)
        generate_federation(settings, node_kinds=[*KINDS, "hotline"], out_dir=root / "data")
        keygen = fed.cesagram("node", "keygen", "keys/node-0")
        assert keygen.returncode == 0 and "node.pub" in keygen.stdout
        for i in range(1, 5):  # node-3 joins one test; node-4's key is never registered
            generate_node_keys(root / "keys" / f"node-{i}")
        fed.start_superlink()
        registered = fed.cesagram(
            "server", "register", *(f"keys/node-{i}/node.pub" for i in range(3)), "--superlink", fed.address, "--ca", str(fed.ca)
        )
        assert registered.returncode == 0, registered.stderr
        assert registered.stdout.count("registered") == 3
        for i, kind in enumerate(KINDS):
            fed.start_node(f"node-{i}", key_dir=root / "keys" / f"node-{i}", data=root / "data" / f"node-{i}.jsonl", kind=kind)
        fed.wait_connected([f"node-{i}" for i in range(3)])
        yield fed
    finally:
        fed.stop_all()


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text(encoding="utf-8"))


def _run_entries(ledger_path: Path, run_id: str) -> list:
    return [entry for entry in PrivacyLedger.open(ledger_path).entries if entry.run == run_id]


def _wait_for_checkpoint(run_dir: Path, process: FlowerProcess, round_: int, timeout_s: float = 600) -> None:
    from server.checkpoint import load_checkpoint

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None or (run_dir / "checkpoint.npz").exists(), process.output()[-3000:]
        checkpoint = load_checkpoint(run_dir) if (run_dir / "checkpoint.npz").exists() else None
        if checkpoint is not None and checkpoint.round >= round_:
            return
        time.sleep(0.5)
    pytest.fail(f"no checkpoint of round {round_} within {timeout_s} s")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- the main run, with a node that goes away -------------------------------------------------
def test_two_rounds_with_tls_and_authentication_and_a_node_killed_mid_run(federation: Federation) -> None:
    """Four nodes expected, three needed: node-3 is killed after round 1 and the run finishes without it."""
    name = "node-3"
    registered = federation.cesagram(
        "server", "register", "keys/node-3/node.pub", "--superlink", federation.address, "--ca", str(federation.ca)
    )
    assert registered.returncode == 0, registered.stderr
    node_id = registered.stdout.split("SuperNode")[-1].strip()
    run_dir = federation.root / "run-main"
    test_path = federation.root / "data" / "test.jsonl"
    node = federation.start_node(name, key_dir=federation.root / "keys" / name, data=federation.root / "data" / f"{name}.jsonl", kind="hotline")
    launcher: FlowerProcess | None = None
    try:
        federation.wait_connected([name])
        launcher = federation.spawn(
            "run-main",
            *federation.run_args(
                run_dir, "rounds=2", "privacy.epsilon=3", "federation.nodes=4", "federation.min_nodes=3",
                f"federation.test_path={test_path}",
            ),
        )  # fmt: skip
        _wait_for_checkpoint(run_dir, launcher, 1)
        node.kill()  # as a crash or a cut cable would: no goodbye to the SuperLink
        status = launcher.wait(timeout=900)
        output = launcher.output()
        assert status == 0, output[-3000:]
    finally:
        node.stop(grace_s=10)  # time to tell the SuperLink it leaves, so its next start is admitted at once
        if launcher is not None:
            launcher.stop(grace_s=5)
        # Tell the SuperLink the node is gone for good, so later runs do not wait for it.
        subprocess.run(
            [flower_bin("flwr"), "supernode", "unregister", node_id, "cesagram"],
            env={**federation.env, "FLWR_HOME": str(run_dir / ".flwr")},
            capture_output=True,
            timeout=60,
            check=False,
        )

    assert sum(line.startswith("round ") for line in output.splitlines()) == 2
    report = _report(run_dir)
    assert [entry["round"] for entry in report["rounds"]] == [1, 2]
    assert report["protections"] == {
        "record_level_dp": True,
        "central_dp": False,
        "secagg_plus": False,
        "tls": True,
        "node_authentication": True,
    }
    assert report["deployment"]["complete"] is True and report["deployment"]["superlink"] == federation.address
    assert set(report["final"]) >= {"f05", "auprc", "latency_f1"}
    for i, kind in enumerate(KINDS):
        node_name = f"node-{i}"
        node_report = report["nodes"][node_name]
        assert node_report["kind"] == kind and node_report["rounds"] == [1, 2] and node_report["missed_rounds"] == []
        entries = _run_entries(federation.ledger(node_name), report["run_id"])
        assert [entry.round for entry in entries] == [1, 2]
        privacy = report["privacy"]["nodes"][node_name]
        assert privacy["epsilon"] == pytest.approx(entries[-1].epsilon_after, rel=1e-12)
        assert 0 < privacy["epsilon"] <= 3.0 + 1e-6  # the run's epsilon, under the node's cap of 20
        assert privacy["cap"] == 20.0
    # The killed node: its round-1 update counted, round 2 went on without it.
    assert report["nodes"][name]["rounds"] == [1] and report["nodes"][name]["missed_rounds"] == [2]
    assert name in report["rounds"][1]["missed"]
    assert sorted(report["rounds"][1]["participants"]) == ["node-0", "node-1", "node-2"]
    round_one = [e for e in _run_entries(federation.ledger(name), report["run_id"]) if e.round == 1]
    assert report["privacy"]["nodes"][name]["epsilon"] == pytest.approx(round_one[0].epsilon_after, rel=1e-12)
    assert f"node {name}: trained in rounds [1], missed [2]" in output
    for relative in ("report.md", "report.html", "checkpoint.npz", "model/weights.safetensors", "run.json", "config.json"):
        assert (run_dir / relative).is_file(), relative


# -- who may join ------------------------------------------------------------------------------
def test_a_node_whose_key_was_not_registered_is_refused(federation: Federation) -> None:
    data = federation.root / "data" / "node-3.jsonl"
    federation.init_ledger("stranger", cap=5.0)
    completed = federation.cesagram(
        "node", "start", "--superlink", federation.address, "--ca", str(federation.ca),
        "--key", "keys/node-4/node.key", "--data", str(data), "--ledger", str(federation.ledger("stranger")),
        "--cap", "5", "--runtime-port", str(free_port()),
        timeout=180,
    )  # fmt: skip
    assert completed.returncode == 4
    errors = _error_lines(completed.stderr)
    assert len(errors) == 1 and "not registered" in errors[0], completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr


def test_a_node_without_the_federations_ca_cannot_connect(federation: Federation) -> None:
    other = federation.cesagram("server", "certs", "other-certs", "--host", "superlink.test")
    assert other.returncode == 0
    wrong_ca = federation.root / "other-certs" / "ca.crt"
    completed = federation.cesagram(
        "node", "start", "--superlink", federation.address, "--ca", str(wrong_ca), "--key", "keys/node-0/node.key",
        "--data", str(federation.root / "data" / "node-0.jsonl"), "--ledger", str(federation.ledger("node-0")),
        "--cap", "20", "--runtime-port", str(free_port()),
    )  # fmt: skip
    assert completed.returncode == 4
    errors = _error_lines(completed.stderr)
    assert len(errors) == 1 and "did not sign" in errors[0], completed.stderr
    # Flower's own SuperNode, given the wrong CA and a registered key, is refused by TLS as well.
    raw = FlowerProcess(
        [
            flower_bin("flower-supernode"), "--superlink", federation.address, "--root-certificates", str(wrong_ca),
            "--auth-supernode-private-key", str(federation.root / "keys/node-0/node.key"),
            "--host", "127.0.0.1", "--port", str(free_port()),
        ],
        env=federation.env,
        log_path=federation.root / "logs" / "wrong-ca.log",
    )  # fmt: skip
    with raw:
        status = raw.wait(timeout=120)
    assert status != 0
    assert "CERTIFICATE_VERIFY_FAILED" in raw.output()


# -- secure aggregation ------------------------------------------------------------------------
def _plain_aggregate(federation: Federation, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list, float]:
    """Each node's round-1 update computed here with the nodes' own train handler, averaged as FedAvg does."""
    from clients.app import train_handler
    from clients.local_data import encoder_for
    from federation.models.spec import build_head
    from federation.models.weights import head_arrays
    from federation.runconfig import RunSettings
    from federation.wire import ConfigKeys, arrays_to_record

    monkeypatch.setenv("CESAGRAM_CACHE_DIR", str(federation.root / "cache"))
    flat = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    run = RunSettings.from_flat(flat)
    encoder = encoder_for(run.model, run.cache_dir)
    initial = head_arrays(build_head(run.model, dim_in=encoder.dim, seed=run.seed))
    updates = []
    for i in range(3):
        name = f"node-{i}"
        metadata = Metadata(
            run_id=1, message_id="m", src_node_id=1, dst_node_id=100 + i, reply_to_message_id="", group_id="1",
            created_at=time.time(), ttl=3600, message_type="train",
        )  # fmt: skip
        content = RecordDict(
            {
                ConfigKeys.ARRAYS_RECORD: arrays_to_record(initial),
                ConfigKeys.CONFIG_RECORD: ConfigRecord({ConfigKeys.SERVER_ROUND: 1}),
            }
        )
        node_config = {
            "data-path": str(federation.root / "data" / f"{name}.jsonl"),
            "ledger-path": str(federation.ledger(name)),
            "cap": 20.0,
            "name": name,
            "kind": KINDS[i],
            "secret-path": str(secret_path_for(federation.ledger(name))),
            **NodePolicy(accept_privacy=("record", "none"), cache_dir=str(federation.root / "cache")).to_node_config(),
        }
        context = Context(run_id=1, node_id=100 + i, node_config=node_config, state=RecordDict(), run_config=flat)
        reply = train_handler(Message(content, metadata=metadata), context)
        assert not reply.has_error(), reply.error
        metrics = reply.content[ConfigKeys.METRICS_RECORD]
        updates.append((reply.content[ConfigKeys.ARRAYS_RECORD].to_numpy_ndarrays(), int(metrics[ConfigKeys.NUM_EXAMPLES])))
    total = sum(n for _, n in updates)
    plain = [sum(arrays[k] * n for arrays, n in updates) / total for k in range(len(initial))]
    return initial, plain, total


def test_secagg_aggregate_equals_the_plain_aggregate_within_quantization(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.checkpoint import load_checkpoint
    from server.secagg import SecAggSettings

    run_dir = federation.root / "run-secagg"
    # No DP: training is then a deterministic function of the run's seed, so the test can
    # recompute each node's update with the same handler the nodes ran.
    completed = federation.cesagram(
        *federation.run_args(run_dir, "rounds=1", "privacy=none", "federation.secagg.enabled=true"), timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = _report(run_dir)
    assert report["protections"]["secagg_plus"] is True and report["protections"]["tls"] is True
    assert sorted(report["rounds"][0]["participants"]) == ["node-0", "node-1", "node-2"]
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.round == 1

    initial, plain, total = _plain_aggregate(federation, run_dir, monkeypatch)
    settings = SecAggSettings()
    # Each node's weighted update is stochastically rounded to one quantization step; the
    # server divides the sum of three by the sum of the weights (examples / max_weight).
    bound = 3 * settings.quantization_step() / (total / settings.max_weight) * 1.01 + 1e-6
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(plain, checkpoint.weights, strict=True))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(plain, initial, strict=True))
    assert difference <= bound
    assert moved > 10 * bound  # the comparison is not trivially between two unchanged models


# -- too few nodes -----------------------------------------------------------------------------
def test_too_few_nodes_online_stops_the_run_with_one_clear_line(federation: Federation) -> None:
    run_dir = federation.root / "run-too-few"
    completed = federation.cesagram(
        *federation.run_args(run_dir, "rounds=2", "federation.nodes=5", "federation.wait_for_nodes_s=5"), timeout=600
    )
    assert completed.returncode == 1
    errors = _error_lines(completed.stderr)
    assert len(errors) == 1, completed.stderr[-2000:]
    assert "stopped after 0 of 2 rounds" in errors[0] and "only 3 of the 5 required nodes" in errors[0]
    assert f"cesagram server resume {run_dir}" in errors[0]
    report = _report(run_dir)
    assert report["rounds"] == [] and report["deployment"]["complete"] is False


# -- the coordinator crashes -------------------------------------------------------------------
def test_coordinator_killed_after_a_round_then_resume_finishes_the_run(federation: Federation) -> None:
    run_dir = federation.root / "run-resume"
    launcher = federation.spawn("run-resume", *federation.run_args(run_dir, "rounds=2", "privacy.epsilon=2"))
    try:
        _wait_for_checkpoint(run_dir, launcher, 1)
        # The coordinator's machine goes down: SuperLink, its ServerApp and the launcher.
        assert federation.superlink is not None
        federation.superlink.kill()
        launcher.kill()
    finally:
        launcher.stop(grace_s=2)
    assert json.loads((run_dir / "progress.jsonl").read_text().splitlines()[-1])["round"] == 1
    federation.start_superlink()  # same database: registered nodes are kept; they reconnect by themselves
    resumed = federation.cesagram("server", "resume", str(run_dir), timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = _report(run_dir)
    assert [entry["round"] for entry in report["rounds"]] == [1, 2]
    assert report["deployment"]["resumed"] is True and report["deployment"]["complete"] is True
    assert any("resumed after round 1" in note for note in report["notes"])
    for i in range(3):
        name = f"node-{i}"
        assert report["nodes"][name]["rounds"] == [1, 2]
        entries = _run_entries(federation.ledger(name), report["run_id"])
        # Round 2 may have been trained twice (its messages were out when the coordinator
        # died); the ledger counts every call and the report shows one of its totals.
        assert {entry.round for entry in entries} == {1, 2}
        reported = report["privacy"]["nodes"][name]["epsilon"]
        assert min(abs(reported - entry.epsilon_after) for entry in entries) <= 1e-9 * max(1.0, reported)


# -- a curious or compromised coordinator ------------------------------------------------------
STRICT = "node-5"  # started with the default policy: record-level DP-SGD only, the installed app only

EVIL_SERVER = '''
import json, time
from pathlib import Path
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    deadline = time.time() + 120
    while len(list(grid.get_node_ids())) < int(context.run_config["nodes"]) and time.time() < deadline:
        time.sleep(1)
    answers = {}
    pending = list(grid.get_node_ids())
    give_up = time.time() + 240
    while pending and time.time() < give_up:  # a node whose heartbeat lapsed answers with Flower's "Error: ... Unavailable"
        sent = [
            Message(RecordDict({"config": ConfigRecord({"server-round": 1})}), dst_node_id=node, message_type="train")
            for node in pending
        ]
        node_of = dict(zip(grid.push_messages(sent), pending))
        while node_of and time.time() < give_up:
            for r in grid.pull_messages(list(node_of)):
                node = node_of.pop(r.metadata.reply_to_message_id)
                answers[node] = [r.error.code, r.error.reason] if r.has_error() else [0, "answered"]
            time.sleep(1)
        pending = [node for node, (_, reason) in answers.items() if reason.startswith("Error:")]
        while pending and time.time() < give_up and not set(pending) <= set(grid.get_node_ids()):
            time.sleep(2)  # ask again once Flower sees the node online
    Path(str(context.run_config["out"])).write_text(json.dumps(list(answers.values())))
'''

EVIL_CLIENT = '''
from pathlib import Path
from flwr.clientapp import ClientApp

# Importing this module is already running next to the data.
MARKER = "{marker}"
Path(MARKER).write_text("the submitted app ran on a node")
app = ClientApp()
'''


def _ledgers(federation: Federation, names: list[str]) -> dict[str, bytes]:
    return {name: federation.ledger(name).read_bytes() for name in names}


@pytest.fixture(scope="module")
def strict_node_key(federation: Federation) -> Iterator[Path]:
    """The strict node's key, registered once for the module and unregistered at its end."""
    from deploy.flower_processes import write_connection

    key_dir = federation.root / "keys" / STRICT
    generate_node_keys(key_dir)
    registered = federation.cesagram(
        "server", "register", f"keys/{STRICT}/node.pub", "--superlink", federation.address, "--ca", str(federation.ca)
    )
    assert registered.returncode == 0, registered.stderr
    node_id = registered.stdout.split("SuperNode")[-1].strip()
    yield key_dir
    home = federation.root / "strict-flwr"
    connection = write_connection(home, address=federation.address, root_certificates=federation.ca)
    subprocess.run(
        [flower_bin("flwr"), "supernode", "unregister", node_id, connection],
        env={**federation.env, "FLWR_HOME": str(home)},
        capture_output=True,
        timeout=60,
        check=False,
    )


def _start_strict_node(federation: Federation, key_dir: Path, *policy: str) -> FlowerProcess:
    node = federation.start_node(
        STRICT, key_dir=key_dir, data=federation.root / "data" / "node-3.jsonl", kind="hotline", policy=policy
    )
    federation.wait_connected([STRICT])
    return node


def test_runs_without_record_dp_are_declined_and_ledgers_stay_byte_identical(
    federation: Federation, strict_node_key: Path
) -> None:
    """privacy=none: the opted-in test nodes train, the strict node declines; privacy=central: every node declines."""
    names = ["node-0", "node-1", "node-2", STRICT]
    node = _start_strict_node(federation, strict_node_key)
    try:
        before = _ledgers(federation, names)
        run_dir = federation.root / "run-none"
        completed = federation.cesagram(*federation.run_args(run_dir, "rounds=1", "privacy=none", "federation.nodes=4"), timeout=900)
        assert completed.returncode == 0, completed.stderr[-3000:]
        report = _report(run_dir)
        strict = report["nodes"][STRICT]
        assert strict["rounds"] == [] and list(strict["declined"]) == ["1"]
        reason = strict["declined"]["1"]
        assert reason == (
            f"{STRICT}: declined: the run asks privacy=none; this node accepts record-level DP-SGD only "
            "(accept-privacy=record)"
        )
        assert STRICT not in report["rounds"][0]["participants"] and STRICT in report["rounds"][0]["declined"]
        assert f"declined: {STRICT}" in completed.stdout + completed.stderr
        assert _ledgers(federation, names) == before

        run_dir = federation.root / "run-central"
        completed = federation.cesagram(*federation.run_args(run_dir, "rounds=1", "privacy=central", "federation.nodes=4"), timeout=900)
        report = _report(run_dir)
        assert report["rounds"][0]["participants"] == []
        assert sorted(report["rounds"][0]["declined"]) == sorted(names)
        for name in names:
            assert "privacy=central" in report["nodes"][name]["declined"]["1"], report["nodes"][name]
        assert any("every node declined" in note for note in report["notes"])
        assert _ledgers(federation, names) == before
    finally:
        node.stop(grace_s=10)  # time to tell the SuperLink it leaves, so its next start is admitted at once


def _submit_evil_app(federation: Federation, attempt: int, marker: Path) -> list[list]:
    """``flwr run`` of an app that ships its own ClientApp; every node's answer, as the app saw it."""
    from deploy.flower_processes import write_app_dir, write_connection

    out = federation.root / f"evil-replies-{attempt}.json"
    app = write_app_dir(
        federation.root / f"evil-app-{attempt}",
        {"nodes": 4, "out": str(out)},
        serverapp="evil_server:app",
        clientapp="evil_client:app",
    )
    (app / "evil_server.py").write_text(EVIL_SERVER)
    (app / "evil_client.py").write_text(EVIL_CLIENT.format(marker=marker))
    home = federation.root / "evil-flwr"
    connection = write_connection(home, address=federation.address, root_certificates=federation.ca)
    completed = subprocess.run(
        [flower_bin("flwr"), "run", str(app), connection, "--stream"],
        env={**federation.env, "FLWR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), (completed.stdout + completed.stderr)[-3000:]
    return json.loads(out.read_text())


def test_an_app_the_nodes_did_not_accept_is_refused_before_any_of_its_code_runs(
    federation: Federation, strict_node_key: Path
) -> None:
    """Submitted straight to the SuperLink with ``flwr run``: an app that ships its own ClientApp code."""
    names = ["node-0", "node-1", "node-2", STRICT]
    policy = ("--accept-app", "0" * 64)  # pins an app that never comes
    node = _start_strict_node(federation, strict_node_key, *policy)
    try:
        before = _ledgers(federation, names)
        marker = federation.root / "evil-ran.txt"
        reasons: dict[str, tuple[int, str]] = {}
        seen: list = []
        # Flower's own "Node Unavailable" comes for a node whose heartbeat lapsed under a loaded
        # machine (after the resume test restarted the SuperLink, a node can take minutes to be
        # heard again). Tolerated for one node per submission; if it is the strict node, the
        # strict node is restarted and the app submitted once more: its refusal must be seen.
        for attempt in range(2):
            answers = _submit_evil_app(federation, attempt, marker)
            strict_log = f"strict node {'alive' if node.poll() is None else f'exited {node.poll()}'}:\n{node.output()[-4000:]}"
            seen.append((answers, strict_log))
            assert len(answers) == 4, seen
            assert all(code != 0 for code, _ in answers), seen  # no node ran the app's code
            assert not marker.exists()
            unavailable = [reason for _, reason in answers if reason.startswith("Error:")]
            assert len(unavailable) <= 1 and all("Unavailable" in reason for reason in unavailable), seen
            answered = {reason.split(":", 1)[0]: (code, reason) for code, reason in answers if not reason.startswith("Error:")}
            assert set(answered) <= set(names) and len(answered) == 4 - len(unavailable), seen
            reasons.update(answered)
            if STRICT in answered:
                break
            node.stop(grace_s=10)
            node = _start_strict_node(federation, strict_node_key, *policy)
        assert STRICT in reasons, seen
        for name in set(reasons) - {STRICT}:
            code, reason = reasons[name]
            assert code == 4003 and "ships its own files" in reason and "evil_client.py" in reason
        code, reason = reasons[STRICT]
        assert code == 4003 and "is not one this node accepts (accept-app)" in reason
        assert _ledgers(federation, names) == before
    finally:
        node.stop(grace_s=10)  # time to tell the SuperLink it leaves, so its next start is admitted at once
