"""Production building blocks without Flower processes: PKI, checkpoints, settings, probes, CLI parsing."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, RecordDict
from flwr.app.metadata import Metadata
from flwr.cli.supernode.register import try_load_public_key
from flwr.common.config import parse_config_args
from flwr.common.constant import ErrorCode
from flwr.serverapp.strategy import FedAdam, FedAvg

from clients.node_cli import explain_supernode_exit, node_config_string
from federation.errors import CheckpointError, ConfigError, DeploymentError
from deploy.flower_processes import parse_address, probe_tls, write_app_dir, write_connection
from federation.histograms import ScoreHistogram
from federation.history import NodeRecord, RoundRecord
from deploy.pki import (
    check_ca_certificate,
    check_node_private_key,
    check_node_public_key,
    generate_node_keys,
    generate_pilot_certificates,
)
from federation.runconfig import RunSettings
from server.checkpoint import load_checkpoint, restore_recorder, restore_strategy, save_checkpoint
from server.production import DeploymentSettings, compose_production, production_settings
from federation.wire import DECLINED_BUDGET, FAILED
from server.recorder import RunRecorder
from server.rounds import RoundPlan, answered_by_nodes, run_rounds
from server.secagg import SecAggSettings, SecAggTrainStep, TappedGrid


# -- PKI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_pilot_certificates(tmp_path_factory.mktemp("certs"), hosts=["superlink.example.org", "10.0.0.5"])


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
@pytest.mark.parametrize("data", ['/srv/data/a "b".jsonl', "/srv/o'brien/data.jsonl", "C:\\data\\node 1.jsonl"])
def test_node_config_survives_flowers_parser(data: str) -> None:
    text = node_config_string(
        data=Path(data), ledger=Path("/srv/ledger.json"), cap=8.0, delta=1e-5, name="hotline a", kind="hotline"
    )
    assert parse_config_args([text]) == {
        "data-path": data,
        "ledger-path": "/srv/ledger.json",
        "cap": 8.0,
        "delta": 1e-5,
        "name": "hotline a",
        "kind": "hotline",
    }


def test_node_config_refuses_what_flower_cannot_read() -> None:
    with pytest.raises(ConfigError, match="--name"):
        node_config_string(data=Path("/d"), ledger=Path("/l"), cap=1.0, delta=1e-5, name="a'b\"c", kind="x")


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


def test_supernode_exit_explanations(tmp_path: Path) -> None:
    refused = explain_supernode_exit(1, "Exit Code: 305\n[code: 2004] Failed to activate SuperNode.", key=tmp_path / "node.key")
    assert "not registered" in refused and str(tmp_path / "node.pub") in refused
    assert "--ca" in explain_supernode_exit(1, "[SSL: CERTIFICATE_VERIFY_FAILED] x", key=tmp_path / "k")
    assert "305" in explain_supernode_exit(1, "ERROR: boom\nExit Code: 305", key=tmp_path / "k")


# -- settings ----------------------------------------------------------------------------------
def test_deployment_settings_round_trip_through_the_flat_run_config() -> None:
    deployment = DeploymentSettings(
        superlink="sl.example.org:9092", root_certificates="/c/ca.crt", wait_for_nodes_s=30.0, secagg=SecAggSettings(enabled=True)
    )
    flat = deployment.to_flat()
    assert all(key.startswith("deployment.") for key in flat)
    assert all(isinstance(value, (bool, int, float, str)) for value in flat.values())
    assert DeploymentSettings.from_run_config({**flat, "rounds": 3}) == deployment
    assert DeploymentSettings.from_run_config({"rounds": 3}) is None


def test_production_composition(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    cfg = compose_production(
        ["experiment=pilot_secagg", "model=ngram", f"federation.root_certificates={ca}", "federation.superlink=sl:9092"]
    )
    run, deployment = production_settings(cfg, run_dir=tmp_path / "run")
    assert deployment.secagg.enabled and deployment.superlink == "sl:9092"
    assert deployment.root_certificates == str(ca.resolve())
    assert run.nodes == 3 and run.required_nodes == 3 and run.model.name == "ngram"
    assert RunSettings.from_flat({**run.to_flat(), **deployment.to_flat()}) == run


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy=krum"], "needs each node's update"),
        (["federation.min_nodes=2"], "at least 3 nodes"),
        (["privacy=central"], "not available with SecAgg"),
    ],
)
def test_secagg_refuses_what_it_cannot_serve(tmp_path: Path, overrides: list[str], message: str) -> None:
    cfg = compose_production(
        ["experiment=pilot_secagg", f"federation.root_certificates={tmp_path}/ca.crt", "federation.nodes=5", *overrides]
    )
    with pytest.raises(ConfigError, match=message):
        production_settings(cfg, run_dir=tmp_path)


def test_production_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="federation.root_certificates"):
        production_settings(compose_production([]), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="federation.superlink"):
        production_settings(
            compose_production([f"federation.root_certificates={tmp_path}/ca", "federation.superlink=nope"]), run_dir=tmp_path
        )
    with pytest.raises(ConfigError, match="federation="):
        compose_production(["federation=simulation"])
    with pytest.raises(ConfigError, match="choose one of"):
        compose_production(["experiment=nope"])


# -- checkpoints -------------------------------------------------------------------------------
def _recorder_with_history(tmp_path: Path) -> RunRecorder:
    recorder = RunRecorder()
    recorder.rounds = [RoundRecord(round=1, participants=["a"], missed=["b"], metrics={"f05": 0.5}, eval_loss=0.3, epsilon={"a": 1.5})]
    recorder.nodes = {
        "a": NodeRecord(name="a", kind="hotline", conversations=10, epsilon=1.5, rounds=[1], declined={2: "declined: cap"}),
        "b": NodeRecord(name="b", missed=[1], failed={1: "DataError: x"}),
    }
    recorder.communication = [{"round": 1, "node": "a", "phase": "train", "sent_bytes": 10, "received_bytes": 12}]
    recorder.notes = ["a note"]
    recorder.phase_seconds = {"training": 1.5}
    recorder.last_histogram = ScoreHistogram.from_lists([0, 1, 2], [3, 0, 0])
    return recorder


def test_checkpoint_round_trip_restores_weights_history_and_strategy_state(tmp_path: Path) -> None:
    recorder = _recorder_with_history(tmp_path)
    strategy = FedAdam()
    strategy.m_t = {"0": np.full((2, 2), 0.25), "1": np.arange(3.0)}
    strategy.v_t = {"0": np.full((2, 2), 0.5), "1": np.ones(3)}
    strategy.current_arrays = {"0": np.eye(2), "1": np.zeros(3)}
    weights = [np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32), np.ones(3, dtype=np.float32)]
    save_checkpoint(tmp_path, server_round=3, run_id="run-x", weights=weights, strategy=strategy, recorder=recorder)

    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.round == 3 and checkpoint.run_id == "run-x"
    for saved, loaded in zip(weights, checkpoint.weights, strict=True):
        np.testing.assert_array_equal(saved, loaded)
    fresh = RunRecorder()
    restore_recorder(fresh, checkpoint.history)
    assert fresh.rounds == recorder.rounds and fresh.notes == recorder.notes
    assert fresh.nodes == recorder.nodes  # int round keys of declined/failed restored
    assert fresh.last_histogram == recorder.last_histogram
    assert fresh.communication == recorder.communication and fresh.phase_seconds == recorder.phase_seconds
    fresh_strategy = FedAdam()
    restore_strategy(fresh_strategy, checkpoint.strategy)
    for attribute in ("m_t", "v_t", "current_arrays"):
        for key, value in getattr(strategy, attribute).items():
            np.testing.assert_array_equal(getattr(fresh_strategy, attribute)[key], value)


def test_checkpoint_absent_corrupt_or_foreign(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path)
    np.savez(tmp_path / "checkpoint.npz", meta=np.frombuffer(json.dumps({"format": "other"}).encode(), dtype=np.uint8))
    with pytest.raises(CheckpointError, match="not a CESAGRAM-FL checkpoint"):
        load_checkpoint(tmp_path)


def test_strategy_state_of_another_strategy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="strategy"):
        restore_strategy(FedAdam(), {"3/m_t/0": np.zeros(2)})


# -- rounds: deadlines and nodes that never answer ---------------------------------------------
class _FewNodesGrid:
    """A Grid stand-in with a fixed set of online nodes; it must not be asked to send anything."""

    def __init__(self, nodes: list[int]) -> None:
        self.nodes = nodes

    def get_node_ids(self) -> list[int]:
        return list(self.nodes)

    def send_and_receive(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing may be sent when too few nodes are online")


def _message(dst: int, *, round_: int = 1) -> Message:
    metadata = Metadata(
        run_id=1, message_id=f"m{dst}", src_node_id=1, dst_node_id=dst, reply_to_message_id="", group_id=str(round_),
        created_at=0.0, ttl=60, message_type="train",
    )  # fmt: skip
    return Message(RecordDict(), metadata=metadata)


def test_too_few_nodes_stops_the_run_with_a_note_after_the_deadline(tmp_path: Path) -> None:
    recorder = RunRecorder()
    plan = RoundPlan(first_round=1, last_round=3, required_nodes=3, timeout_s=5, wait_for_nodes_s=0.3, expected_nodes=4)
    started = time.monotonic()
    arrays = ArrayRecord([np.zeros(2, dtype=np.float32)])
    result = run_rounds(
        grid=_FewNodesGrid([11, 12]),  # type: ignore[arg-type]
        strategy=FedAvg(),
        arrays=arrays,
        plan=plan,
        callbacks=recorder,
        train_config=ConfigRecord({}),
        evaluate_config=ConfigRecord({}),
    )
    assert time.monotonic() - started >= 0.3
    assert result is arrays and recorder.rounds == []
    assert len(recorder.notes) == 1
    assert "only 2 of the 3 required nodes were online within 0 s" in recorder.notes[0]
    assert "start the missing nodes" in recorder.notes[0]


def test_superlink_stand_in_replies_count_as_missed_not_failed() -> None:
    sent = _message(42)
    node_reply = Message(Error(code=4002, reason="node-a: DataError: bad"), reply_to=sent)
    unavailable = Message(
        Error(code=ErrorCode.NODE_UNAVAILABLE, reason="Error: Node Unavailable"),
        metadata=Metadata(
            run_id=1, message_id="", src_node_id=1, dst_node_id=1, reply_to_message_id="m43", group_id="1",
            created_at=0.0, ttl=60, message_type="train",
        ),
    )  # fmt: skip
    assert answered_by_nodes([node_reply, unavailable]) == [node_reply]


def test_secagg_outcome_pairs_each_node_with_its_training_message() -> None:
    setup = [_message(n) for n in (5, 6, 7)]
    trained = [_message(n) for n in (5, 6)]  # node 7 dropped during key sharing
    replies = [Message(RecordDict(), reply_to=trained[0]), Message(Error(code=4001, reason="node-6: declined"), reply_to=trained[1])]
    tapped = TappedGrid(_FewNodesGrid([5, 6, 7]))  # type: ignore[arg-type]
    tapped.calls = [(setup, [Message(RecordDict(), reply_to=m) for m in setup]), (setup[:2], []), (trained, replies)]
    outcome = SecAggTrainStep._outcome(tapped)
    assert [m.metadata.dst_node_id for m in outcome.sent] == [5, 6, 7]
    assert outcome.sent[0] is trained[0] and outcome.sent[2] is setup[2]
    assert outcome.replies == replies  # node 7: no reply, so the recorder marks it as having missed the round


# -- commands that must fail before starting anything ------------------------------------------
def test_server_start_refuses_a_key_that_is_not_the_certificates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    first = generate_pilot_certificates(tmp_path / "a", hosts=["x"])
    second = generate_pilot_certificates(tmp_path / "b", hosts=["x"])
    status = main(["server", "start", "--ca", str(first.ca_cert), "--cert", str(first.server_cert), "--key", str(second.server_key)])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "is not the key of" in err[-1]
    status = main(["server", "start", "--ca", str(second.ca_cert), "--cert", str(first.server_cert), "--key", str(first.server_key)])
    assert status == 2 and "was not signed by" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    assert main(["server", "resume", str(tmp_path)]) == 2
    assert "is not the folder of a `cesagram server run`" in capsys.readouterr().err


def test_node_check_prints_the_planned_spend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main
    from federation.data.synthetic import SynthSettings, generate_federation
    from federation.privacy.ledger import PrivacyLedger

    generate_federation(SynthSettings(conversations_per_node=40, test_conversations=0, min_node_conversations=30), node_kinds=["police"], out_dir=tmp_path)
    ledger = tmp_path / "ledger.json"
    PrivacyLedger.create(ledger, node="n", cap=5.0, delta=1e-5)
    assert main(["node", "check", str(tmp_path / "node-0.jsonl"), "--rounds", "4", "--epsilon", "8", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "planned run: 4 rounds" in out
    assert "cap 5" in out and "-> epsilon 5.0000 after the run" in out  # the node's cap binds, not the run's 8


def _error_reply(code: int, reason: str) -> SimpleNamespace:
    return SimpleNamespace(has_error=lambda: True, error=SimpleNamespace(code=code, reason=reason))


def test_recorder_names_a_failing_node_from_our_error_codes_only(tmp_path: Path) -> None:
    """Our replies start with the node's name; Flower's own errors (e.g. a worker crash) do not."""
    recorder = RunRecorder()
    ours = recorder._node(7, _error_reply(FAILED, "node-3: DataError: node-3.jsonl:2: label must be 0 or 1"))
    declined = recorder._node(8, _error_reply(DECLINED_BUDGET, "node-4: declined: cap reached"))
    flowers = recorder._node(9, _error_reply(0, "<class 'TypeError'>: unsupported operand"))
    assert (ours.name, declined.name, flowers.name) == ("node-3", "node-4", "node-id-9")


def test_report_markdown_lists_missed_and_declined_rounds_per_node() -> None:
    from federation.report import report_markdown

    report = {
        "run_id": "r",
        "mode": "federated",
        "privacy": {"guarantee": "none"},
        "protections": {"tls": False},
        "timing": {"total": 1.0},
        "nodes": {
            "a": {"kind": "hotline", "conversations": 10, "positives": 2, "rounds": [1], "missed_rounds": [], "declined": {"2": "cap"}, "failed": {}},
            "b": {"kind": "police", "conversations": 5, "positives": 1, "rounds": [], "missed_rounds": [1, 2], "declined": {}, "failed": {"1": "DataError: x"}},
        },
    }
    text = report_markdown(report)
    assert "| a | hotline | 10 | 2 | 1 | - | 2 | - |" in text
    assert "| b | police | 5 | 1 | 0 | 1, 2 | - | round 1: DataError: x |" in text
