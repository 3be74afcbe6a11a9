"""A curious or compromised coordinator against one node: the node's policy decides, not the run.

The train and evaluate handlers are called directly, as Flower calls them, with a real
Flower ``Context`` and ``Message``. Each case asserts what the node did: declined with a
reason naming the setting, ledger bytes unchanged, and what its replies do (not) carry.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app.metadata import Metadata

from clients.allow_list import REPLY_ALLOW_LIST, allowed
from clients.app import evaluate_handler, train_handler
from federation.data.load import load_conversations
from federation.data.split import split_validation
from federation.errors import ConfigError, LedgerError
from federation.models.spec import ModelSpec, build_head
from federation.privacy.ledger import PrivacyLedger
from federation.privacy.node_policy import (
    VIRTUAL_POLICY_ENV,
    NodePolicy,
    create_secret,
    policy_from_node_config,
    quota_path_for,
    secret_path_for,
    virtual_policy_env,
)
from federation.runconfig import EvaluationSettings, PrivacySettings, RunSettings
from federation.training import TrainSettings
from federation.wire import DECLINED_POLICY, ConfigKeys, arrays_to_record

SPEC = ModelSpec(name="ngram", hidden=0, window=1, dropout=0.0, ngram_dim=64)
RISK = ["how old are you", "you seem so mature", "keep this between us", "add me on another app", "send a photo"]
BENIGN = ["the match was great", "homework is due friday", "pizza tonight", "see you at school", "new song is out"]


def _conversations(n: int) -> list[dict]:
    return [
        {
            "id": f"c{i}",
            "label": i % 2,
            "messages": [
                {"author": f"a{i}-{j % 2}", "text": (RISK if i % 2 else BENIGN)[(i + j) % 5]} for j in range(6)
            ],
        }
        for i in range(n)
    ]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


class Node:
    """One real node's files (data, ledger, secret, cache) and its node config."""

    def __init__(self, root: Path, *, conversations: int = 60, policy: NodePolicy | None = None, name: str = "node-2"):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.data = _write(root / "data.jsonl", _conversations(conversations))
        self.ledger = root / "ledger.json"
        PrivacyLedger.create(self.ledger, node=name, cap=8.0, delta=1e-5)
        self.secret = create_secret(secret_path_for(self.ledger))
        self.cache = root / "cache"
        self.cache.mkdir()
        policy = policy or NodePolicy()
        policy = NodePolicy(**{**policy.__dict__, "cache_dir": str(self.cache)})
        self.config = {
            "data-path": str(self.data),
            "ledger-path": str(self.ledger),
            "cap": 8.0,
            "delta": 1e-5,
            "name": name,
            "kind": "hotline",
            "secret-path": str(self.secret),
            **policy.to_node_config(),
        }

    def ledger_bytes(self) -> bytes:
        return self.ledger.read_bytes()


def _run_values() -> dict:
    return dict(
        run_id="run-1",
        run_dir="/nonexistent/run",
        rounds=2,
        nodes=1,
        model=SPEC,
        train=TrainSettings(local_epochs=1.0, batch_size=16, learning_rate=0.5, optimizer="adam"),
        privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="off"),
    )


def run_config(**overrides) -> dict:
    values = _run_values()
    values.update(overrides)
    return RunSettings(**values).to_flat()


def context(node: Node, flat: dict) -> Context:
    return Context(run_id=1, node_id=2, node_config=dict(node.config), state=RecordDict(), run_config=flat)


def _arrays(seed: int = 0) -> ArrayRecord:
    head = build_head(SPEC, dim_in=SPEC.ngram_dim, seed=seed)
    return arrays_to_record([p.detach().numpy() for p in head.state_dict().values()])


def message(kind: str, *, arrays: ArrayRecord | None = None, threshold: float | None = None) -> Message:
    config = ConfigRecord({ConfigKeys.SERVER_ROUND: 1})
    if threshold is not None:
        config[ConfigKeys.THRESHOLD] = threshold
    metadata = Metadata(
        run_id=1, message_id="m1", src_node_id=1, dst_node_id=2, reply_to_message_id="", group_id="1",
        created_at=0.0, ttl=60, message_type=kind,
    )  # fmt: skip
    content = RecordDict({ConfigKeys.ARRAYS_RECORD: arrays or _arrays(), ConfigKeys.CONFIG_RECORD: config})
    return Message(content, metadata=metadata)


def assert_declined(reply: Message, *words: str) -> str:
    assert reply.has_error(), "the node answered instead of declining"
    assert reply.error.code == DECLINED_POLICY
    reason = reply.error.reason
    assert reason.startswith("node-2: declined: ") and "\n" not in reason
    for word in words:
        assert word in reason
    return reason


# -- the allow-list ----------------------------------------------------------------------------
def _check_against_allow_list(kind: str, reply: Message) -> set[tuple[str, str]]:
    assert not reply.has_error(), reply.error
    seen: set[tuple[str, str]] = set()
    for record_name, record in reply.content.items():
        if isinstance(record, ArrayRecord):
            assert allowed(kind, record_name, "*") is not None, f"{kind} reply carries arrays in {record_name!r}"
            seen.add((record_name, "*"))
            continue
        assert isinstance(record, (MetricRecord, ConfigRecord)), type(record)
        for key, value in record.items():
            item = allowed(kind, record_name, key)
            assert item is not None, f"{kind} reply carries {record_name}/{key}, which is not on the allow-list"
            assert isinstance(value, item.types) and not isinstance(value, bool), (key, type(value))
            if isinstance(value, list):
                assert all(isinstance(v, int) and not isinstance(v, bool) for v in value), key
            seen.add((record_name, key))
    return seen


BOTH_AUDITS = PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="both", audit_canaries=100, audit_input_canaries=20)


def test_every_reply_item_is_on_the_allow_list(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(accept_audit=("off", "white", "both")))
    flat = run_config(privacy=BOTH_AUDITS)
    train_reply = train_handler(message("train"), context(node, flat))
    seen_train = _check_against_allow_list("train", train_reply)
    eval_reply = evaluate_handler(message("evaluate", threshold=0.5), context(node, flat))
    seen_eval = _check_against_allow_list("evaluate", eval_reply)
    listed = {(kind, record, key) for kind, record, key in REPLY_ALLOW_LIST}
    assert {("train", r, k) for r, k in seen_train} == {i for i in listed if i[0] == "train"}
    assert {("evaluate", r, k) for r, k in seen_eval} == {i for i in listed if i[0] == "evaluate"}
    metrics = train_reply.content[ConfigKeys.METRICS_RECORD]
    assert ConfigKeys.TRAIN_LOSS not in metrics
    assert ConfigKeys.EVAL_LOSS not in eval_reply.content[ConfigKeys.METRICS_RECORD]
    assert metrics[ConfigKeys.EPSILON] > 0  # record-level DP-SGD, charged
    assert len(PrivacyLedger.open(node.ledger).entries) == 1
    assert metrics[ConfigKeys.AUDIT_CANARIES_IN] + metrics[ConfigKeys.AUDIT_CANARIES_OUT] == 100
    assert 0 <= metrics[ConfigKeys.AUDIT_LOWER_BOUND] <= metrics[ConfigKeys.AUDIT_EPSILON] <= metrics[ConfigKeys.EPSILON]
    black = eval_reply.content[ConfigKeys.METRICS_RECORD]
    assert black[ConfigKeys.BLACK_CANARIES_IN] + black[ConfigKeys.BLACK_CANARIES_OUT] == 20
    assert black[ConfigKeys.BLACK_EPSILON] == pytest.approx(metrics[ConfigKeys.AUDIT_EPSILON])  # this run's steps
    assert 0 <= black[ConfigKeys.BLACK_LOWER_BOUND] <= black[ConfigKeys.BLACK_EPSILON]
    assert 0 <= black[ConfigKeys.BLACK_MIA_AUC] <= 1


def test_black_box_canaries_are_trained_on_but_never_count_as_conversations(tmp_path: Path) -> None:
    """The "in" canaries add DP-SGD records (more steps), never to num-examples or the node's counts."""
    audited = Node(tmp_path / "audited", policy=NodePolicy(accept_audit=("off", "black")))
    off = train_handler(message("train"), context(audited, run_config()))  # the same node (same split), unaudited
    black_run = run_config(
        run_id="run-2", privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="black", audit_input_canaries=40)
    )
    black = train_handler(message("train"), context(audited, black_run))
    for key in (ConfigKeys.NUM_EXAMPLES,):
        assert black.content[ConfigKeys.METRICS_RECORD][key] == off.content[ConfigKeys.METRICS_RECORD][key]
    assert black.content[ConfigKeys.NODE_RECORD] == off.content[ConfigKeys.NODE_RECORD]
    assert black.content[ConfigKeys.METRICS_RECORD][ConfigKeys.STEPS] > off.content[ConfigKeys.METRICS_RECORD][ConfigKeys.STEPS]
    assert ConfigKeys.AUDIT_LOWER_BOUND not in black.content[ConfigKeys.METRICS_RECORD]  # no white-box canaries
    reference = audited.ledger.with_name("ledger.json.black-audit.json")
    first = reference.read_bytes()
    again = message("train", arrays=_arrays(seed=5))
    again.content[ConfigKeys.CONFIG_RECORD][ConfigKeys.SERVER_ROUND] = 2
    train_handler(again, context(audited, black_run))
    assert reference.read_bytes() == first  # the reference is the model of the node's first training of the run
    reference.unlink()  # lost after training began: a model received now has seen the canaries
    third = message("train", arrays=_arrays(seed=6))
    third.content[ConfigKeys.CONFIG_RECORD][ConfigKeys.SERVER_ROUND] = 3
    train_handler(third, context(audited, black_run))
    assert not reference.exists()
    evaluated = evaluate_handler(message("evaluate"), context(audited, black_run)).content[ConfigKeys.METRICS_RECORD]
    assert ConfigKeys.BLACK_LOWER_BOUND not in evaluated  # the run goes unaudited rather than wrongly audited


def test_a_node_that_has_not_trained_reports_no_black_box_audit(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(accept_audit=("off", "black")))
    flat = run_config(privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="black", audit_input_canaries=20))
    metrics = evaluate_handler(message("evaluate"), context(node, flat)).content[ConfigKeys.METRICS_RECORD]
    assert ConfigKeys.BLACK_LOWER_BOUND not in metrics


def test_a_black_box_run_is_not_held_to_the_white_box_canary_cap() -> None:
    from federation.privacy.node_policy import check_request

    run = RunSettings(**{**_run_values(), "privacy": PrivacySettings(audit="black", audit_canaries=5_000_000)})
    check_request(NodePolicy(accept_audit=("off", "black")), run)  # no white-box canaries: nothing to cap


@pytest.mark.parametrize(
    ("accept", "privacy", "words"),
    [
        # the default policy accepts the white-box audit only: canary conversations in training need an opt-in
        (None, dict(audit="black", audit_input_canaries=20), ("privacy.audit=black", "accept-audit")),
        (("off", "black"), dict(audit="black", audit_input_canaries=50_000), ("audit_input_canaries=50000", "at most 1,000")),
        (None, dict(audit="white", audit_canaries=5_000_000), ("audit_canaries=5000000", "at most 100,000")),
    ],
)
def test_an_audit_outside_the_policy_or_its_limits_is_declined(tmp_path: Path, accept, privacy, words) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(accept_audit=accept) if accept else None)
    before = node.ledger_bytes()
    flat = run_config(privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, **privacy))
    assert_declined(train_handler(message("train"), context(node, flat)), *words)
    assert node.ledger_bytes() == before


def test_a_node_whose_policy_refuses_audits_declines_an_audited_run(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(accept_audit=("off",)))
    before = node.ledger_bytes()
    flat = run_config(privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="white", audit_canaries=100))
    assert_declined(train_handler(message("train"), context(node, flat)), "privacy.audit=white", "accept-audit")
    assert node.ledger_bytes() == before
    assert not (tmp_path / "n" / "ledger.json.audit.json").exists()


def test_the_audit_keeps_its_canaries_across_rounds(tmp_path: Path) -> None:
    """Round 2 scores the same canaries as round 1, over the steps of both rounds (one file beside the ledger)."""
    node = Node(tmp_path / "n")
    flat = run_config(privacy=PrivacySettings(epsilon=2.0, max_grad_norm=1.0, audit="white", audit_canaries=100))
    first = train_handler(message("train"), context(node, flat)).content[ConfigKeys.METRICS_RECORD]
    second_message = message("train")
    second_message.content[ConfigKeys.CONFIG_RECORD][ConfigKeys.SERVER_ROUND] = 2
    second = train_handler(second_message, context(node, flat)).content[ConfigKeys.METRICS_RECORD]
    assert second[ConfigKeys.AUDIT_CANARIES_IN] == first[ConfigKeys.AUDIT_CANARIES_IN]
    assert second[ConfigKeys.AUDIT_STEPS] == first[ConfigKeys.AUDIT_STEPS] + second[ConfigKeys.STEPS]
    assert second[ConfigKeys.AUDIT_EPSILON] > first[ConfigKeys.AUDIT_EPSILON]


def test_counts_leave_rounded(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", conversations=57)  # 29 positives
    reply = train_handler(message("train"), context(node, run_config()))
    info = reply.content[ConfigKeys.NODE_RECORD]
    assert (info[ConfigKeys.CONVERSATIONS], info[ConfigKeys.POSITIVES]) == (60, 30)
    assert reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.NUM_EXAMPLES] % 10 == 0


def test_early_warning_counts_leave_rounded(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", conversations=57)
    reply = evaluate_handler(message("evaluate", threshold=0.0), context(node, run_config()))
    metrics = reply.content[ConfigKeys.METRICS_RECORD]
    counts = {key: metrics[f"early-{key}"] for key in ("tp", "fp", "fn", "tn")}
    assert all(value % 10 == 0 for value in counts.values()), counts
    assert counts["tp"] + counts["fn"] > 0  # threshold 0 warns on every positive validation conversation
    latency = metrics["early-latency-counts"]
    assert all(bin_ % 10 == 0 for bin_ in latency) and sum(latency) == counts["tp"]
    assert 0 <= metrics["early-lc5-sum"] <= counts["tp"]


def test_crafted_head_has_no_train_loss_to_read(tmp_path: Path) -> None:
    """A head crafted to single out one conversation: the reply reads the same without it."""
    with_target = Node(tmp_path / "with", conversations=60)
    without = Node(tmp_path / "without", conversations=60)
    for node in (with_target, without):  # the same node (one secret), minus the targeted conversation
        node.secret.write_text("5e" * 32 + "\n")  # fixed: counts then sit away from a rounding boundary
    records = _conversations(60)
    policy = policy_from_node_config(with_target.config)
    train_part, _ = split_validation(load_conversations(with_target.data), fraction=policy.validation_fraction, seed=policy.split_seed)
    target = next(c.id for c in train_part if c.label == 1)
    _write(without.data, [r for r in records if r["id"] != target])
    crafted = [np.zeros_like(a) for a in _arrays().to_numpy_ndarrays()]
    crafted[-1] = crafted[-1] + 50.0  # every score saturates: a loss would spike on the one positive target
    replies = [
        train_handler(message("train", arrays=arrays_to_record(crafted)), context(node, run_config()))
        for node in (with_target, without)
    ]
    readable = []
    for reply in replies:
        metrics = dict(reply.content[ConfigKeys.METRICS_RECORD])
        assert ConfigKeys.TRAIN_LOSS not in metrics
        for timing in (ConfigKeys.TRAIN_SECONDS, ConfigKeys.ENCODE_SECONDS, ConfigKeys.EPSILON):
            metrics.pop(timing)
        readable.append((metrics, dict(reply.content[ConfigKeys.NODE_RECORD])))
    assert readable[0] == readable[1]


# -- privacy modes -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["none", "central"])
def test_run_without_record_dp_is_declined_and_ledger_untouched(tmp_path: Path, mode: str) -> None:
    node = Node(tmp_path / "n")
    before = node.ledger_bytes()
    flat = run_config(privacy=PrivacySettings(mode=mode, max_grad_norm=1.0, audit="off"))
    reason = assert_declined(train_handler(message("train"), context(node, flat)), f"privacy={mode}", "accept-privacy")
    assert "record-level DP-SGD only" in reason
    assert_declined(evaluate_handler(message("evaluate"), context(node, flat)), f"privacy={mode}")
    assert node.ledger_bytes() == before
    assert not quota_path_for(node.ledger).exists()


def test_run_config_cannot_widen_the_policy(tmp_path: Path) -> None:
    node = Node(tmp_path / "n")
    flat = {**run_config(privacy=PrivacySettings(mode="none")), "policy.accept-privacy": "record,none"}
    assert_declined(train_handler(message("train"), context(node, flat)), "privacy=none")


def test_opted_in_node_trains_without_dp_and_charges_nothing(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(accept_privacy=("record", "none")))
    before = node.ledger_bytes()
    reply = train_handler(message("train"), context(node, run_config(privacy=PrivacySettings(mode="none"))))
    assert not reply.has_error()
    assert reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.EPSILON] == 0.0
    assert node.ledger_bytes() == before


def test_too_long_a_run_is_declined(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(max_rounds=5))
    assert_declined(train_handler(message("train"), context(node, run_config(rounds=6))), "rounds=6", "max-rounds")


# -- evaluation --------------------------------------------------------------------------------
def test_million_bin_histogram_is_declined_and_default_bins_are_bounded(tmp_path: Path) -> None:
    node = Node(tmp_path / "n")
    flat = run_config(evaluation=EvaluationSettings(histogram_bins=1_000_000))
    assert_declined(evaluate_handler(message("evaluate"), context(node, flat)), "histogram_bins=1000000", "max-histogram-bins")
    reply = evaluate_handler(message("evaluate"), context(node, run_config()))
    metrics = reply.content[ConfigKeys.METRICS_RECORD]
    assert len(metrics[ConfigKeys.HIST_POS]) == len(metrics[ConfigKeys.HIST_NEG]) <= NodePolicy().max_histogram_bins


def test_evaluate_called_a_thousand_times_is_bounded(tmp_path: Path) -> None:
    node = Node(tmp_path / "n", policy=NodePolicy(max_evaluations_per_run=20, max_evaluations_per_day=30))
    flat = run_config()
    replies = [evaluate_handler(message("evaluate"), context(node, flat)) for _ in range(1000)]
    answered = [r for r in replies if not r.has_error()]
    assert len(answered) == 20
    assert_declined(replies[-1], "max-evaluations-per-run=20")
    other_run = [evaluate_handler(message("evaluate"), context(node, run_config(run_id="run-2"))) for _ in range(50)]
    assert sum(not r.has_error() for r in other_run) == 10  # the day's 30, across runs
    assert_declined(other_run[-1], "max-evaluations-per-day=30")
    counts = json.loads(quota_path_for(node.ledger).read_text())
    assert counts["runs"] == {"run-1": 20, "run-2": 10}


def test_validation_split_ignores_the_runs_seed_and_fraction(tmp_path: Path) -> None:
    node = Node(tmp_path / "n")
    arrays = _arrays(seed=3)
    readings = []
    for seed, fraction in ((0, 0.2), (1, 0.9), (12345, 0.05)):
        flat = run_config(run_id=f"run-{seed}", seed=seed, evaluation=EvaluationSettings(validation_fraction=fraction))
        metrics = evaluate_handler(message("evaluate", arrays=arrays), context(node, flat)).content[ConfigKeys.METRICS_RECORD]
        readings.append((metrics[ConfigKeys.NUM_EXAMPLES], metrics[ConfigKeys.HIST_POS], metrics[ConfigKeys.HIST_NEG]))
    assert readings[0] == readings[1] == readings[2]


def test_split_and_training_seeds_come_from_the_node_secret() -> None:
    a = NodePolicy(secret="a" * 64)
    b = NodePolicy(secret="b" * 64)
    assert a.seed(0, "run-1", "node-2", 1) != b.seed(0, "run-1", "node-2", 1)
    assert NodePolicy().seed(0, "run-1", "node-2", 1) not in (a.seed(0, "run-1", "node-2", 1), b.seed(0, "run-1", "node-2", 1))


# -- the cache ---------------------------------------------------------------------------------
def test_cache_dir_outside_the_nodes_is_declined(tmp_path: Path) -> None:
    node = Node(tmp_path / "n")
    planted = tmp_path / "elsewhere"
    flat = run_config(cache_dir=str(planted))
    assert_declined(train_handler(message("train"), context(node, flat)), f"cache-dir={planted}", str(node.cache))
    assert not planted.exists()
    inside = run_config(cache_dir=str(node.cache / "sub"))
    assert not train_handler(message("train"), context(node, inside)).has_error()


# -- virtual nodes -----------------------------------------------------------------------------
def _virtual_context(tmp_path: Path, flat: dict) -> Context:
    return Context(run_id=1, node_id=2, node_config={"partition-id": 0, "num-partitions": 1}, state=RecordDict(), run_config=flat)


def test_virtual_nodes_take_their_policy_from_the_simulation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, ledger_dir = tmp_path / "data", tmp_path / "ledgers"
    data_dir.mkdir()
    ledger_dir.mkdir()
    _write(data_dir / "node-0.jsonl", _conversations(40))
    PrivacyLedger.create(ledger_dir / "node-0.json", node="node-0", cap=8.0, delta=1e-5)
    flat = run_config(privacy=PrivacySettings(mode="none"), data_dir=str(data_dir), ledger_dir=str(ledger_dir))
    monkeypatch.delenv(VIRTUAL_POLICY_ENV, raising=False)
    reply = train_handler(message("train"), _virtual_context(tmp_path, flat))
    assert reply.has_error() and reply.error.code == DECLINED_POLICY and "privacy=none" in reply.error.reason
    env = virtual_policy_env({"accept_privacy": ["record", "none"]}, split_seed=0)
    monkeypatch.setenv(VIRTUAL_POLICY_ENV, env[VIRTUAL_POLICY_ENV])
    assert not train_handler(message("train"), _virtual_context(tmp_path, flat)).has_error()


# -- ledger and secret at the command line -----------------------------------------------------
def test_node_init_creates_ledger_and_secret_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    ledger = tmp_path / "node.ledger.json"
    assert main(["node", "init", str(ledger), "--cap", "6", "--delta", "1e-6"]) == 0
    opened = PrivacyLedger.open(ledger)
    assert (opened.cap, opened.delta, opened.spent) == (6.0, 1e-6, 0.0)
    secret = secret_path_for(ledger)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    before = ledger.read_bytes(), secret.read_bytes()
    capsys.readouterr()
    assert main(["node", "init", str(ledger), "--cap", "9"]) == 3
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert (ledger.read_bytes(), secret.read_bytes()) == before


def test_node_start_refuses_a_missing_ledger_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main
    from deploy.pki import generate_node_keys, generate_pilot_certificates

    certs = generate_pilot_certificates(tmp_path / "certs", hosts=["superlink.test"])
    key, _ = generate_node_keys(tmp_path / "keys")
    data = _write(tmp_path / "data.jsonl", _conversations(20))
    missing = tmp_path / "ledgers" / "node.json"
    status = main([
        "node", "start", "--superlink", "127.0.0.1:1", "--ca", str(certs.ca_cert), "--key", str(key),
        "--data", str(data), "--ledger", str(missing), "--cap", "8",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 3 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(missing) in err and f"cesagram node init {missing} --cap 8" in err
    assert not missing.exists()


def test_node_start_refuses_a_corrupt_ledger(tmp_path: Path) -> None:
    from clients.node_cli import _open_ledger

    ledger = tmp_path / "ledger.json"
    ledger.write_text("{not json", encoding="utf-8")
    with pytest.raises(LedgerError, match=str(ledger)):
        _open_ledger(ledger, cap=8.0, delta=1e-5)
    assert ledger.read_text(encoding="utf-8") == "{not json"


def test_test_privacy_modes_need_an_explicit_opt_in() -> None:
    import argparse

    from clients.node_cli import policy_from_args

    args = argparse.Namespace(accept_privacy=["record", "none"], allow_test_privacy=False)
    with pytest.raises(ConfigError, match="--allow-test-privacy"):
        policy_from_args(args)
    args.allow_test_privacy = True
    assert policy_from_args(args).accept_privacy == ("record", "none")
    assert policy_from_args(argparse.Namespace(accept_privacy=None, allow_test_privacy=False)).accept_privacy == ("record",)



def test_accept_audit_flag_reaches_the_node_config() -> None:
    import argparse

    from clients.node_cli import policy_from_args

    default = policy_from_args(argparse.Namespace(accept_privacy=None, allow_test_privacy=False))
    assert default.accept_audit == ("off", "white")
    refusing = policy_from_args(argparse.Namespace(accept_privacy=None, allow_test_privacy=False, accept_audit=["off"]))
    assert refusing.accept_audit == ("off",)
    assert policy_from_node_config(refusing.to_node_config()).accept_audit == ("off",)
    with pytest.raises(ConfigError, match="accept-audit"):
        NodePolicy(accept_audit=("grey",))


# -- histograms under DP (opt-in) --------------------------------------------------------------
def test_rdp_of_a_full_batch_step_is_the_gaussian_mechanism() -> None:
    from federation.privacy.accounting import ORDERS, rdp_of

    sigma = 4.0
    assert rdp_of([(sigma, 1.0, 1)]) == pytest.approx(np.asarray(ORDERS) / (2 * sigma**2), rel=1e-9)


def test_noised_histograms_are_charged_to_the_ledger(tmp_path: Path) -> None:
    from federation.privacy.accounting import epsilon_of
    from federation.privacy.release import evaluation_key

    node = Node(tmp_path / "n", policy=NodePolicy(histogram_noise=5.0))
    reply = evaluate_handler(message("evaluate"), context(node, run_config()))
    metrics = reply.content[ConfigKeys.METRICS_RECORD]
    assert all(isinstance(c, int) and c >= 0 for c in metrics[ConfigKeys.HIST_POS] + metrics[ConfigKeys.HIST_NEG])
    ledger = PrivacyLedger.open(node.ledger)
    [entry] = ledger.entries
    assert (entry.run, entry.round, entry.steps, entry.noise_multiplier, entry.sample_rate) == (
        evaluation_key("run-1", 5.0), 1, 1, 5.0, 1.0,
    )  # fmt: skip
    assert ledger.spent == pytest.approx(epsilon_of([(5.0, 1.0, 1)], delta=1e-5))
    evaluate_handler(message("evaluate"), context(node, run_config()))
    assert PrivacyLedger.open(node.ledger).spent == pytest.approx(epsilon_of([(5.0, 1.0, 2)], delta=1e-5))


def test_a_noised_histogram_past_the_cap_is_not_sent(tmp_path: Path) -> None:
    from federation.wire import DECLINED_BUDGET

    node = Node(tmp_path / "n", policy=NodePolicy(histogram_noise=0.5))  # one release costs more than epsilon 8
    before = node.ledger_bytes()
    reply = evaluate_handler(message("evaluate"), context(node, run_config()))
    assert reply.has_error() and reply.error.code == DECLINED_BUDGET and "noised histogram" in reply.error.reason
    assert node.ledger_bytes() == before


def test_an_exhausted_ledger_refuses_a_release_with_the_training_refusal(tmp_path: Path) -> None:
    """A histogram release is a call of the training's ledger transaction (spend_budget): the same one-line refusal."""
    import re

    from federation.privacy.plan import RunPlan
    from federation.wire import DECLINED_BUDGET

    node = Node(tmp_path / "n", policy=NodePolicy(histogram_noise=5.0))
    plan = RunPlan(noise_multiplier=1.0, sample_rate=1.0, planned_steps=50, target_epsilon=8.0, created="2024-01-01T00:00:00+00:00")
    PrivacyLedger.open(node.ledger).record(
        run_id="run-1", round=1, steps=50, noise_multiplier=1.0, sample_rate=1.0, plan=plan
    )  # run-1 already planned and trained past the cap: its next training call meets the cap check
    spent = PrivacyLedger.open(node.ledger).spent
    assert spent > 8.0
    before = node.ledger_bytes()
    refusal = re.compile(
        r"node-2: declined: privacy budget exceeded: (?P<call>.+) would take the node from epsilon "
        rf"{spent:.4f} to \d+\.\d{{4}}, past its cap 8\.0000 \(delta 1e-05\); nothing was trained, sent or "
        r"recorded: stop training this node or have its operator raise the cap"
    )
    calls = []
    for handler, kind in ((train_handler, "train"), (evaluate_handler, "evaluate")):
        reply = handler(message(kind), context(node, run_config()))
        assert reply.has_error() and reply.error.code == DECLINED_BUDGET, reply
        match = refusal.fullmatch(reply.error.reason)
        assert match is not None, reply.error.reason
        calls.append(match["call"])
    assert re.fullmatch(r"this call \(\d+ steps\)", calls[0]) and calls[1] == "a noised histogram (sigma 5)"
    assert node.ledger_bytes() == before


def test_a_run_asking_the_prv_accountant_does_not_change_the_nodes_own(tmp_path: Path) -> None:
    """The node composes with its ledger's accountant; the run's privacy.accountant never reaches it."""
    node = Node(tmp_path / "n")
    flat = run_config(privacy=PrivacySettings(epsilon=2.0, accountant="prv", max_grad_norm=1.0, audit="off"))
    reply = train_handler(message("train"), context(node, flat))
    assert not reply.has_error(), reply.error
    assert reply.content[ConfigKeys.NODE_RECORD][ConfigKeys.ACCOUNTANT] == "rdp"
    ledger = PrivacyLedger.open(node.ledger)
    assert ledger.accountant == "rdp" and [entry.accountant for entry in ledger.entries] == ["rdp"]
    assert reply.content[ConfigKeys.METRICS_RECORD][ConfigKeys.EPSILON] == ledger.spent


def test_virtual_nodes_of_a_store_read_their_own_part_and_a_one_chat_node_still_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from federation.data.store import StoreWriter

    chats = load_conversations(_write(tmp_path / "all.jsonl", _conversations(11)))
    store, ledger_dir = tmp_path / "store", tmp_path / "ledgers"
    ledger_dir.mkdir()
    with StoreWriter(store) as writer:
        writer.add(chats[:10])
        writer.add(chats[10:])  # a device with one chat
    policy = {"accept_privacy": ["record", "central"], "count_granularity": 1, "histogram_noise": 1.0}
    env = virtual_policy_env(policy, split_seed=0)
    monkeypatch.setenv(VIRTUAL_POLICY_ENV, env[VIRTUAL_POLICY_ENV])
    flat = run_config(
        privacy=PrivacySettings(mode="central", noise_multiplier=1.0, clipping_norm=1.0),
        data_dir=str(store),
        ledger_dir=str(ledger_dir),
        nodes=2,
    )

    def virtual(index: int) -> Context:
        config = {"partition-id": index, "num-partitions": 2}
        return Context(run_id=1, node_id=2 + index, node_config=config, state=RecordDict(), run_config=flat)

    first = train_handler(message("train"), virtual(0))
    assert not first.has_error(), first.error.reason if first.has_error() else ""
    assert first.content[ConfigKeys.NODE_RECORD][ConfigKeys.CONVERSATIONS] == 10  # its part of the store only
    single = train_handler(message("train"), virtual(1))
    assert not single.has_error(), single.error.reason if single.has_error() else ""
    metrics = single.content[ConfigKeys.METRICS_RECORD]
    assert metrics[ConfigKeys.NUM_EXAMPLES] == 1 and metrics[ConfigKeys.STEPS] >= 1  # too small to hold one out
    assert single.content[ConfigKeys.NODE_RECORD][ConfigKeys.CONVERSATIONS] == 1
    evaluated = evaluate_handler(message("evaluate"), virtual(1))
    assert not evaluated.has_error()
    scores = evaluated.content[ConfigKeys.METRICS_RECORD]
    # Nothing to release: no noise-only histogram (it would bias the threshold), no ledger spend.
    assert scores[ConfigKeys.NUM_EXAMPLES] == 0 and sum(scores[ConfigKeys.HIST_POS]) + sum(scores[ConfigKeys.HIST_NEG]) == 0
    assert not (ledger_dir / "node-1.json").exists()  # the release would have needed (and charged) a ledger
