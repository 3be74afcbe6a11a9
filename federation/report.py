"""The run folder's report: ``report.json`` for programs, ``report.md``, plots and ``report.html`` for people."""

from __future__ import annotations

import logging
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from federation.io import atomic_write_json, atomic_write_text
from federation.runconfig import INPUT_KINDS, WHITE_KINDS, RunSettings
from federation.history import RunHistory
from federation.privacy.accounting import run_central_epsilon

log = logging.getLogger(__name__)

METRIC_KEYS = ("f05", "f1", "precision", "recall", "auprc")
#: At most this many nodes get a row, list item or figure line of their own in report.md, report.html
#: and the model card; above it they are summarised per node kind (report.json keeps every node).
NODE_ROWS = 50
#: At most this many names (failed nodes, attackers, nodes not audited) in one summarised list.
LISTED_NODES = 20


def name_list(names: Sequence[str], limit: int = LISTED_NODES) -> str:
    """Names joined by commas, at most ``limit`` of them and how many more: a list of thousands reads as none."""
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def nodes_summary(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int | float]]:
    """Per node kind: its nodes, their data and how they took part, from the report's ``nodes``.

    What report.md, report.html and the model card show instead of a row per node when
    there are more than :data:`NODE_ROWS`; ``missed``, ``declined`` and ``failed`` count
    node-rounds.
    """
    kinds: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes.values():
        kinds.setdefault(str(node["kind"]), []).append(node)
    return {kind: _kind_figures(members) for kind, members in sorted(kinds.items())}


def _kind_figures(members: Sequence[Mapping[str, Any]]) -> dict[str, int | float]:
    """One kind's row of :func:`nodes_summary`."""
    conversations = [int(node["conversations"]) for node in members]
    return {
        "nodes": len(members),
        "conversations": sum(conversations),
        "positives": sum(int(node["positives"]) for node in members),
        "conversations_per_node_min": min(conversations),
        "conversations_per_node_median": statistics.median(conversations),
        "conversations_per_node_max": max(conversations),
        "nodes_trained": sum(1 for node in members if node.get("rounds")),
        "node_rounds_trained": sum(len(node.get("rounds", [])) for node in members),
        "missed": sum(len(node.get("missed_rounds", [])) for node in members),
        "declined": sum(len(node.get("declined", {})) for node in members),
        "failed": sum(len(node.get("failed", {})) for node in members),
    }


def report_nodes_summary(report: Mapping[str, Any]) -> dict[str, dict[str, int | float]]:
    """The report's ``nodes_summary``, or the same built from its ``nodes`` (a report.json of older code)."""
    return report.get("nodes_summary") or nodes_summary(report.get("nodes") or {})


def node_failures(nodes: Mapping[str, Mapping[str, Any]]) -> list[tuple[int, str, str, str]]:
    """Every ``(round, node, "failed" or "rejected", reason)`` by round: what a summary still names."""
    failures = [
        (int(r), name, state, str(why))
        for name, node in nodes.items()
        for state in ("failed", "rejected")
        for r, why in (node.get(state) or {}).items()
    ]
    return sorted(failures, key=lambda f: (f[0], _natural(f[1]), f[2]))


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts node-9 before node-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name))


def privacy_summary(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The per-node privacy figures pooled: what report.md and the model card show above :data:`NODE_ROWS` nodes."""
    epsilons = [p["epsilon"] for p in nodes.values() if p.get("epsilon") is not None]
    caps = [p["cap"] for p in nodes.values() if p.get("cap") is not None]
    return {
        "nodes": len(nodes),
        "epsilon_max": max(epsilons, default=None),
        "epsilon_median": statistics.median(epsilons) if epsilons else None,
        "deltas": sorted({p["delta"] for p in nodes.values() if p.get("delta") is not None}),
        "cap_max": max(caps, default=None),
        "accountants": sorted({str(p["accountant"]) for p in nodes.values()}),
        "units": sorted({str(p["unit"]) for p in nodes.values()}),
        "stopped_for_budget": sum(1 for p in nodes.values() if p.get("stopped_for_budget")),
        # each against its own cap: a max epsilon beside a max cap would hide one node over its cap
        "over_cap": sum(1 for p in nodes.values() if _over_cap(p)),
    }


def _over_cap(entry: Mapping[str, Any]) -> bool:
    epsilon, cap = entry.get("epsilon"), entry.get("cap")
    return epsilon is not None and cap is not None and epsilon > cap + 1e-9


def communication_per_round(communication: Mapping[str, Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Per round: how many nodes exchanged messages and the bytes in all (the page's view of many nodes)."""
    rounds: dict[int, dict[str, int]] = {}
    for per_round in communication.values():
        for r, entry in per_round.items():
            total = rounds.setdefault(int(r), {"nodes": 0, "sent_bytes": 0, "received_bytes": 0})
            total["nodes"] += 1
            total["sent_bytes"] += int(entry["sent_bytes"])
            total["received_bytes"] += int(entry["received_bytes"])
    return {str(r): rounds[r] for r in sorted(rounds)}


def privacy_section(run: RunSettings, recorder: RunHistory) -> dict[str, Any]:
    """Per node: epsilon with its delta, cap, accountant, unit and steps; or the central guarantee."""
    if run.privacy.mode == "record":
        return {
            "guarantee": "record-level DP-SGD at each node",
            "nodes": {
                name: {
                    "epsilon": node.epsilon,
                    "delta": node.delta,
                    "cap": node.cap,
                    "accountant": node.accountant or "rdp",
                    "unit": "conversation",
                    "steps": node.steps,
                    "stopped_for_budget": node.stopped_for_budget,
                    "declined": {str(r): reason for r, reason in node.declined.items()},
                }
                for name, node in sorted(recorder.nodes.items())
            },
        }
    if run.privacy.mode == "central":
        privacy = run.privacy
        rate = run.strategy.fraction_train
        rounds = len(recorder.rounds)  # every round samples and counts, aggregated or skipped
        epsilon = run_central_epsilon(run, rounds)
        skipped = [note for note in recorder.notes if "central DP:" in note]
        return {
            "guarantee": "central DP at the server (client-level: one node is the unit)",
            "central": {
                "epsilon": epsilon,
                "delta": privacy.delta,
                "accountant": privacy.accountant,
                "unit": "node",
                "rounds": rounds,
                "noise_multiplier": privacy.noise_multiplier,
                "clipping_norm": privacy.clipping_norm,
                "sample_rate": rate,
                "population": run.nodes,
                "sampling": (
                    "none: every node every round"
                    if rate >= 1.0
                    else f"Poisson: each node independently with probability {rate:g} each round"
                ),
                "weighting": f"equal: the sum of clipped updates over the expected {rate * run.nodes:g} nodes",
                "skipped_rounds": len(skipped),
            },
            "nodes": {},
        }
    return {"guarantee": "none: no differential privacy in this run", "nodes": {}}


AUDIT_WHAT = (
    "one-run white-box audit (Steinke, Nasr and Jagielski 2023): gradient canaries in DP-SGD's own loop; "
    "an empirical lower bound on epsilon, never a proof of the claim"
)
BLACK_AUDIT_WHAT = (
    "one-run black-box audit (Steinke, Nasr and Jagielski 2023): random-word canary conversations with random labels "
    "in the nodes' training data by secret coins, membership guessed from the final global model's scores against "
    "the model each node first received; an empirical lower bound on epsilon for the whole pipeline, never a proof "
    "of the claim, and no check on a hostile coordinator (it chooses both models)"
)


def audit_section(run: RunSettings, recorder: RunHistory) -> dict[str, Any] | None:
    """Per node and for the run: canaries, guesses, the lower bound beside the accounted epsilon.

    The white-box figures are at the top (``nodes``, ``run``), the black-box ones under
    ``black``. The run's test pools every node's canaries (each node's guesses at the same
    point of the fixed scan, added up): the nodes' outputs together are (max epsilon, max
    delta)-DP for each canary, since a canary reaches only its own node (its audit
    coordinates, or its training data). Each node's figures are its latest round's. None
    when the run has no audit and no node sent one.
    """
    white = {name: node for name, node in sorted(recorder.nodes.items()) if node.audit}
    black = {name: node for name, node in sorted(recorder.nodes.items()) if node.black_audit}
    if (run.privacy.audit == "off" or run.mode != "federated") and not white and not black:
        return None  # the baselines train without canaries
    control = run.privacy.mode == "none"
    section: dict[str, Any] = {
        "kind": run.privacy.audit,
        "what": AUDIT_WHAT + (" (control: DP-SGD without noise, no privacy)" if control else ""),
        "control": control,
        "canaries_per_node": run.privacy.audit_canaries if run.privacy.audit in WHITE_KINDS else 0,
        **_audit_part(run, {name: (node.audit, node) for name, node in white.items()}, kind="white"),
        "not_audited": sorted(set(recorder.nodes) - set(white) - set(black)),
        "black": None,
    }
    if run.privacy.audit in INPUT_KINDS or black:
        part = _audit_part(run, {name: (node.black_audit, node) for name, node in black.items()}, kind="black")
        aucs = [entry["mia_auc"] for entry in part["nodes"].values() if entry.get("mia_auc") is not None]
        if part["run"] is not None and aucs:
            part["run"]["mia_auc_mean"] = round(sum(aucs) / len(aucs), 4)
        section["black"] = {
            "what": BLACK_AUDIT_WHAT + (" (control: plain training without DP, no privacy)" if control else ""),
            "canaries_per_node": run.privacy.audit_input_canaries,
            **part,
            "not_audited": sorted(set(recorder.nodes) - set(black)),
        }
        section["guarantee_failed"] = section["guarantee_failed"] or part["guarantee_failed"]
    return section


def _audit_part(run: RunSettings, figures: dict[str, tuple[dict[str, Any], Any]], *, kind: str) -> dict[str, Any]:
    """One audit kind's ``nodes``, pooled ``run`` and ``guarantee_failed`` from the nodes' latest figures."""
    from federation.privacy.audit import CONFIDENCE, GuessCounts, summarize

    control = run.privacy.mode == "none"
    nodes: dict[str, Any] = {}
    for name, (entry, node) in figures.items():
        epsilon = entry["epsilon"]
        nodes[name] = {
            **{key: entry[key] for key in ("canaries_in", "canaries_out", "guesses", "correct", "lower_bound")},
            "kind": kind,
            "confidence": entry["confidence"],
            "epsilon": epsilon,
            "delta": node.delta,
            "accountant": node.accountant or "rdp",
            "steps": entry["steps"],
            "round": entry["round"],
            **({"mia_auc": entry["mia_auc"]} if "mia_auc" in entry else {}),
            "guarantee_failed": epsilon is not None and entry["lower_bound"] > epsilon,
        }
    part: dict[str, Any] = {
        "nodes": nodes,
        "run": None,
        "guarantee_failed": any(entry["guarantee_failed"] for entry in nodes.values()),
    }
    scans = [entry for entry, _ in figures.values()]
    if scans and len({len(s["scan_guesses"]) for s in scans}) == 1:
        points = [
            GuessCounts(per_side=0, guesses=sum(s["scan_guesses"][i] for s in scans), correct=sum(s["scan_correct"][i] for s in scans))
            for i in range(len(scans[0]["scan_guesses"]))
        ]
        epsilons = [entry["epsilon"] for entry in nodes.values()]
        deltas = [node.delta for _, node in figures.values() if node.delta is not None] or [run.privacy.delta]
        epsilon = None if control or any(e is None for e in epsilons) else max(epsilons)
        pooled = summarize(
            kind=kind,
            canaries=sum(s["canaries_in"] + s["canaries_out"] for s in scans),
            canaries_in=sum(s["canaries_in"] for s in scans),
            scan=points,
            epsilon=float("inf") if epsilon is None else epsilon,
            delta=max(deltas),
            steps=max(s["steps"] for s in scans),
            confidence=CONFIDENCE,
        )
        part["run"] = {**pooled.to_dict(), "nodes": len(scans)}
        part["run"].pop("steps")  # each node took its own steps (in the nodes' entries)
        part["guarantee_failed"] = part["guarantee_failed"] or pooled.failed
    return part


def protections(run: RunSettings, *, tls: bool = False, authentication: bool = False, secagg: bool = False) -> dict[str, bool]:
    """Which protections the run had."""
    return {
        "record_level_dp": run.privacy.mode == "record",
        "central_dp": run.privacy.mode == "central",
        "secagg_plus": secagg,
        "tls": tls,
        "node_authentication": authentication,
    }


def training_parts(run: RunSettings, public: dict[str, Any] | None) -> dict[str, Any]:
    """Which part of training was public (pretraining on the public set) and which private (the nodes)."""
    private = {
        "mode": run.mode,
        "privacy": run.privacy.mode,
        "data": "the nodes' own conversations" if run.mode == "federated" else "the nodes' conversations, pooled",
    }
    if public is None:
        return {"public": None, "private": private}
    return {
        "public": {
            **public,
            "privacy": "none needed: synthetic chats and public chit-chat that share no text with the nodes' data",
        },
        "private": private,
    }


def training_lines(training: dict[str, Any] | None) -> list[str]:
    """One line on the public and private parts of training."""
    if not training:
        return []
    public = training.get("public")
    private = training["private"]
    private_text = f"private part: {private['data']}, privacy {private['privacy']}"
    if not public:
        return [f"Training: no public pretraining; {private_text}.", ""]
    if public.get("resumed"):
        return [f"Training: resumed from a checkpoint of a run pretrained on public data; {private_text}.", ""]
    return [
        f"Training: public part: the head pretrained on {public['conversations']} public conversations "
        f"({public['positives']} grooming; no privacy cost), epoch {public['best_epoch']} of {public['epochs']} kept "
        f"(held-out public F0.5 {public['validation_f05']:.3f}); {private_text}.",
        "",
    ]


def build_report(
    *,
    run: RunSettings,
    config: dict[str, Any],
    recorder: RunHistory,
    final: dict[str, Any],
    federated_final: dict[str, Any],
    timing: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the README's "run folder" section)."""
    nodes = {
        name: {
            "kind": node.kind,
            "conversations": node.conversations,
            "positives": node.positives,
            "rounds": node.rounds,
            "missed_rounds": node.missed,
            "failed": {str(r): reason for r, reason in node.failed.items()},
            "declined": {str(r): reason for r, reason in node.declined.items()},
            "rejected": {str(r): reason for r, reason in node.rejected.items()},
        }
        for name, node in sorted(recorder.nodes.items())
    }
    communication: dict[str, dict[str, dict[str, int]]] = {}
    for item in recorder.communication:
        per_node = communication.setdefault(item["node"], {})
        entry = per_node.setdefault(str(item["round"]), {"sent_bytes": 0, "received_bytes": 0})
        entry["sent_bytes"] += item["sent_bytes"]
        entry["received_bytes"] += item["received_bytes"]
    report = {
        "run_id": run.run_id,
        "mode": run.mode,
        "config": config,
        "settings": run.to_flat(),
        "rounds": [record.to_dict() for record in recorder.rounds],
        "final": final,
        "federated_validation": federated_final,
        "privacy": privacy_section(run, recorder),
        "protections": protections(run),
        "nodes": nodes,
        "nodes_summary": nodes_summary(nodes),
        "timing": timing,
        "communication": communication,
        "notes": recorder.notes,
    }
    if extra:
        report.update(extra)
    audit = audit_section(run, recorder)
    if audit is not None:
        report["audit"] = audit
        if audit["guarantee_failed"]:
            text = _audit_failed_note(audit)
            log.error("%s", text)
            report["notes"] = [*report["notes"], text]
            report["privacy"] = {**report["privacy"], "guarantee": "FAILED AUDIT: " + report["privacy"]["guarantee"], "audit_failed": True}
    return report


def _audit_failed_note(audit: dict[str, Any]) -> str:
    """The note of a failed audit: where the bound exceeds epsilon (at most :data:`LISTED_NODES` nodes named)."""
    nodes: list[str] = []
    pooled: list[str] = []
    for part, word in ((audit, "white-box"), (audit["black"], "black-box")):
        if part is None:
            continue
        nodes += [f"{name} ({word})" for name, entry in part["nodes"].items() if entry["guarantee_failed"]]
        if part["run"] and part["run"]["guarantee_failed"]:
            pooled.append(f"the run's pooled {word} test")
    where = ", ".join(part for part in (name_list(nodes), *pooled) if part)
    return (
        f"PRIVACY AUDIT FAILED: the empirical lower bound exceeds the accounted epsilon at {where}; the stated "
        "guarantee does not hold for this run (noise, sampling, clipping or accounting is wrong)"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def report_markdown(report: dict[str, Any]) -> str:
    """The report for a person: what ran, how it went, what it cost in privacy."""
    lines = [f"# CESAGRAM-FL run {report['run_id']}", "", f"Mode: **{report['mode']}**.", ""]
    final = report.get("final") or {}
    if final:
        lines += ["## Held-out test set", "", "| metric | value |", "| --- | --- |"]
        for key in (*METRIC_KEYS, "precision_at_1pct_fpr", "latency_f1", "speed", "erde5", "erde50", "threshold"):
            if key in final:
                lines.append(f"| {key} | {_fmt(final[key])} |")
        lines.append("")
        lines += prevalence_lines(final.get("at_prevalence"))
    lines += training_lines(report.get("training"))
    lines += real_negative_lines(report.get("real_negatives"))
    lines += behaviour_lines(report.get("behaviour"))
    attack = report.get("attack")
    if attack:
        lines += [
            "## Simulated attack",
            "",
            f"{attack['kind']} by {name_list(attack['attackers'])} from round {attack['from_round']} "
            "(the researcher's setting; the server was not told).",
            "",
        ]
        backdoor = attack.get("backdoor")
        if backdoor:
            lines += [
                f"Backdoor success rate: {_fmt(backdoor.get('success_rate'))} of the {backdoor.get('flagged_clean')} "
                f"grooming test conversations flagged without the trigger are no longer flagged with it "
                f"({backdoor.get('grooming_test_conversations')} grooming test conversations).",
                "",
            ]
    comparison = report.get("comparison")
    if comparison:
        lines += ["## Against the baselines", ""]
        lines += [f"- {line}" for line in comparison.get("statements", [])]
        lines.append("")
    lines += rounds_lines(report)
    lines += privacy_lines(report["privacy"])
    lines += audit_lines(report.get("audit"))
    lines += ["Protections: " + ", ".join(f"{k}={'on' if v else 'off'}" for k, v in report["protections"].items()), ""]
    lines += nodes_lines(report)
    lines += ["## Timing (seconds)", ""] + [f"- {k}: {_fmt(v)}" for k, v in report["timing"].items()] + [""]
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in report["notes"]] + [""]
    return "\n".join(lines)


def rounds_lines(report: dict[str, Any]) -> list[str]:
    """The rounds table and the rejected updates; above :data:`NODE_ROWS` nodes a cell counts nodes instead of naming them."""
    rounds = report.get("rounds") or []
    if not rounds:
        return []
    many = len(report.get("nodes") or {}) > NODE_ROWS
    lines = [
        "## Rounds",
        "",
        "| round | train loss | F0.5 | AUPRC | max epsilon | trained | declined | failed | rejected | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in rounds:
        metrics = entry.get("metrics", {})
        eps = metrics.get("epsilon", {})
        named = [_names_cell(entry.get(key, {}), count=many) for key in ("declined", "failed", "rejected")]
        lines.append(
            f"| {entry['round']} | {_fmt(entry.get('train_loss'))} | {_fmt(metrics.get('f05'))} | "
            f"{_fmt(metrics.get('auprc'))} | {_fmt(max(eps.values(), default=None))} | "
            f"{len(entry.get('participants', []))} | {' | '.join(named)} | {_fmt(entry.get('seconds'))} |"
        )
    return [*lines, "", *_rejected_lines(rounds)]


def _names_cell(names: Mapping[str, Any], *, count: bool) -> str:
    """A table cell of node names, or their number where the run has too many nodes to name."""
    if count:
        return str(len(names))
    return ", ".join(names) or "-"


def _rejected_lines(rounds: list[dict[str, Any]]) -> list[str]:
    """The rejected train replies, at most :data:`NODE_ROWS` rows (every one is in report.json's rounds)."""
    rejected = [(entry["round"], name, why) for entry in rounds for name, why in entry.get("rejected", {}).items()]
    if not rejected:
        return []
    lines = [
        "## Rejected updates",
        "",
        "The server's update validation refused these train replies; each round went on with the others.",
        "",
        "| round | node | reason |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {r} | {name} | {why} |" for r, name, why in rejected[:NODE_ROWS]]
    if len(rejected) > NODE_ROWS:
        lines += ["", f"... and {len(rejected) - NODE_ROWS} more, in report.json (each round's `rejected`)."]
    return [*lines, ""]


def privacy_lines(privacy: dict[str, Any]) -> list[str]:
    """The guarantee, then the per-node figures (pooled above :data:`NODE_ROWS` nodes) or the central one."""
    lines = ["## Privacy", "", f"Guarantee: {privacy['guarantee']}.", ""]
    nodes = privacy.get("nodes") or {}
    if nodes and len(nodes) <= NODE_ROWS:
        lines += ["| node | epsilon | delta | cap | accountant | unit | steps | stopped for budget |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, p in nodes.items():
            lines.append(
                f"| {name} | {_fmt(p['epsilon'])} | {p['delta']} | {_fmt(p['cap'])} | {p['accountant']} | "
                f"{p['unit']} | {p['steps']} | {'yes' if p['stopped_for_budget'] else 'no'} |"
            )
        lines.append("")
    elif nodes:
        pooled = privacy_summary(nodes)
        lines += [
            "| nodes | max epsilon | median epsilon | delta | max cap | accountants | unit | stopped for budget |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            f"| {pooled['nodes']} | {_fmt(pooled['epsilon_max'])} | {_fmt(pooled['epsilon_median'])} | "
            f"{', '.join(str(d) for d in pooled['deltas']) or '-'} | {_fmt(pooled['cap_max'])} | "
            f"{', '.join(pooled['accountants'])} | {', '.join(pooled['units'])} | {pooled['stopped_for_budget']} |",
            "",
            "Each node's figures are in report.json (`privacy.nodes`).",
            "",
        ]
        if pooled["over_cap"]:
            lines += [f"**{pooled['over_cap']} node(s) spent more than their own cap.**", ""]
    if privacy.get("central"):
        c = privacy["central"]
        lines += [
            f"Central DP: epsilon {_fmt(c['epsilon'])} at delta {c['delta']} ({c['accountant']}, unit: {c['unit']}); "
            f"{c.get('rounds')} rounds at noise multiplier {c['noise_multiplier']}, node sampling "
            f"{c.get('sampling', '-')}, {c.get('skipped_rounds', 0)} round(s) skipped for a missing update.",
            "",
        ]
    return lines


def nodes_lines(report: dict[str, Any]) -> list[str]:
    """The ``## Nodes`` section: a row per node, or above :data:`NODE_ROWS` a row per kind and the failures."""
    nodes = report.get("nodes") or {}
    if not nodes:
        return []
    if len(nodes) > NODE_ROWS:
        return _kind_lines(report_nodes_summary(report), nodes)
    lines = [
        "## Nodes",
        "",
        "| node | kind | conversations | positives | rounds | missed rounds | declined | failures |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, n in nodes.items():
        failures = "; ".join(f"round {r}: {why}" for r, why in n["failed"].items()) or "-"
        declined = ", ".join(str(r) for r in n.get("declined", {})) or "-"
        missed = ", ".join(str(r) for r in n.get("missed_rounds", [])) or "-"
        lines.append(
            f"| {name} | {n['kind']} | {n['conversations']} | {n['positives']} | {len(n['rounds'])} "
            f"| {missed} | {declined} | {failures} |"
        )
    return [*lines, ""]


def _kind_lines(kinds: dict[str, dict[str, int | float]], nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The summarised ``## Nodes`` section: a row per kind, then the first failed or rejected nodes."""
    lines = [
        "## Nodes",
        "",
        f"{len(nodes)} nodes, too many for a row each: the per-node figures are in report.json (`nodes`). "
        "Missed, declined and failed count node-rounds.",
        "",
        "| kind | nodes | conversations | positives | conversations per node (min / median / max) | nodes that trained "
        "| node-rounds trained | missed | declined | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, k in kinds.items():
        spread = " / ".join(f"{k[f'conversations_per_node_{at}']:g}" for at in ("min", "median", "max"))
        lines.append(
            f"| {kind} | {k['nodes']} | {k['conversations']} | {k['positives']} | {spread} | {k['nodes_trained']} "
            f"| {k['node_rounds_trained']} | {k['missed']} | {k['declined']} | {k['failed']} |"
        )
    return [*lines, "", *_failure_lines(node_failures(nodes)), *_decline_lines(nodes)]


def _decline_lines(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Why nodes declined, each distinct reason once with how often and the first nodes that gave it.

    A reason starts with the node's name ("node-7: declined: ..."); it is dropped so that one
    refusal of thousands of nodes (a policy, a spent budget) reads as one line.
    """
    reasons: dict[str, list[str]] = {}
    for name, node in nodes.items():
        for why in (node.get("declined") or {}).values():
            text = str(why)
            text = text.split(": ", 1)[1] if text.startswith(f"{name}: ") else text
            reasons.setdefault(text, []).append(name)
    if not reasons:
        return []
    lines = ["Declined, by reason:", ""]
    for text, names in sorted(reasons.items(), key=lambda item: -len(item[1])):
        lines.append(f"- {len(names)} time(s): {text} ({name_list(sorted(dict.fromkeys(names), key=_natural))})")
    return [*lines, ""]


def _failure_lines(failures: list[tuple[int, str, str, str]]) -> list[str]:
    """The first :data:`LISTED_NODES` failures and rejections by round, and how many more there were."""
    if not failures:
        return ["No node failed or was rejected.", ""]
    nodes = len({name for _, name, _, _ in failures})
    lines = [f"Failed or rejected: {len(failures)} time(s), at {nodes} node(s); by round:", ""]
    lines += [f"- round {r}: {name} {state}: {why}" for r, name, state, why in failures[:LISTED_NODES]]
    if len(failures) > LISTED_NODES:
        lines.append(f"- ... and {len(failures) - LISTED_NODES} more, in report.json (`nodes`)")
    return [*lines, ""]


def audit_lines(audit: dict[str, Any] | None) -> list[str]:
    """A line per audit kind: its lower bound beside the accounted epsilon, for the run and each node."""
    if not audit:
        return []
    lines = []
    if audit["kind"] in WHITE_KINDS or audit["nodes"]:
        lines.append(_audit_line(audit, "white-box", f"{audit['canaries_per_node']} canaries per node", audit))
    black = audit.get("black")
    if black:
        lines.append(_audit_line(black, "black-box", f"{black['canaries_per_node']} canary conversations per node", audit))
    return [*lines, ""] if lines else []


def _audit_line(part: dict[str, Any], word: str, canaries: str, audit: dict[str, Any]) -> str:
    """One audit kind's line: the pooled bound, the verdict, then each node's bound (pooled above :data:`NODE_ROWS`)."""
    run = part.get("run")
    if not run:
        return f"Privacy audit ({word}): no node reported one ({name_list(part['not_audited']) or '-'})."
    if part["guarantee_failed"]:
        verdict = "**FAILED: the bound exceeds the accounted epsilon**"
    elif audit.get("control"):
        verdict = "the control: no DP, so no claim to test (a large bound shows the audit's power)"
    else:
        verdict = "not above the accounted epsilon (a lower bound: it cannot prove the claim)"
    auc = f", mean MIA AUC {run['mia_auc_mean']:.3f}" if "mia_auc_mean" in run else ""
    return (
        f"Privacy audit ({word}, {canaries}, {run['confidence']:.0%} confidence): lower bound {_against(run)} "
        f"({run['correct']}/{run['guesses']} guesses right{auc}), {verdict}; per node: {_audit_nodes_text(part['nodes'])}."
    )


def _against(entry: dict[str, Any]) -> str:
    """A lower bound beside the epsilon it tests (and the MIA AUC where there is one)."""
    claim = "no DP (control)" if entry["epsilon"] is None else f"accounted epsilon {entry['epsilon']:.3f}"
    auc = f", MIA AUC {entry['mia_auc']:.3f}" if "mia_auc" in entry else ""
    return f"{entry['lower_bound']:.3f} against {claim}{auc}"


def _audit_nodes_text(nodes: dict[str, dict[str, Any]]) -> str:
    """Each node's bound, or above :data:`NODE_ROWS` nodes their count, the highest bound and the failed nodes."""
    if len(nodes) <= NODE_ROWS:
        return "; ".join(f"{name} {_against(entry)}" for name, entry in nodes.items())
    highest, entry = max(nodes.items(), key=lambda item: item[1]["lower_bound"])
    failed = [name for name, e in nodes.items() if e["guarantee_failed"]]
    return (
        f"{len(nodes)} nodes (each in report.json), highest {highest} {_against(entry)}, "
        f"above its accounted epsilon at {len(failed)}" + (f" ({name_list(failed)})" if failed else "")
    )


def prevalence_lines(table: dict[str, Any] | None) -> list[str]:
    """The test set's figures reweighted to stated base rates, as a Markdown table."""
    if not table:
        return []
    lines = [
        f"At other base rates (the test file is {table['test_prevalence']:.1%} grooming; classes reweighted):",
        "",
        "| decision | prevalence | precision | recall | alert rate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for decision in ("flagged", "warned"):
        for row in table[decision].values():
            lines.append(
                f"| {decision} | {row['prevalence']:.1%} | {_fmt(row['precision'])} | {_fmt(row['recall'])} | "
                f"{row['alert_rate']:.2%} |"
            )
    return [*lines, ""]


def real_negative_lines(check: dict[str, Any] | None) -> list[str]:
    """One line on false alarms among real benign chats never trained on."""
    if not check:
        return []
    if not check.get("measured"):
        return [f"Real benign chats: not measured ({check.get('why', 'unknown reason')}).", ""]
    return [
        f"Real benign chats never trained on (reserved chitchat, {check['conversations']} conversations): "
        f"warned on {check['warned']} ({check['warned_rate']:.1%}), flagged {check['flagged']} "
        f"({check['flagged_rate']:.1%}).",
        "",
    ]


def behaviour_lines(suite: dict[str, Any] | None) -> list[str]:
    """One line with the behavioural suite's pass rate per capability."""
    capabilities = (suite or {}).get("capabilities")
    if not capabilities:
        return []
    rates = ", ".join(
        f"{name} {c['passed']}/{c['cases']} ({c['passed'] / c['cases']:.0%})" for name, c in capabilities.items() if c["cases"]
    )
    return [f"Behavioural suite (`cesagram evaluate --behaviour`): {rates}.", ""]


def plot_rounds(report: dict[str, Any], run_dir: Path) -> list[Path]:
    """metrics.png (metrics per round) and epsilon.png (epsilon per node per round)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rounds = report.get("rounds") or []
    if not rounds:
        return []
    xs = [entry["round"] for entry in rounds]
    paths = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in METRIC_KEYS:
        ax.plot(xs, [entry["metrics"].get(key) for entry in rounds], marker="o", label=key)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation metric (aggregated over nodes)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(run_dir / "metrics.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    names = sorted({name for entry in rounds for name in entry["metrics"].get("epsilon", {})})
    if len(names) > NODE_ROWS:
        _plot_epsilon_spread(ax, xs, rounds)
    else:
        for name in names:
            ax.plot(xs, [entry["metrics"]["epsilon"].get(name) for entry in rounds], marker="o", label=name)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("epsilon spent (total, RDP)")
    if names:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(run_dir / "epsilon.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _plot_epsilon_spread(ax: Any, xs: list[int], rounds: list[dict[str, Any]]) -> None:
    """Above :data:`NODE_ROWS` nodes: the lowest, median and highest epsilon per round, not a line per node."""
    spread: list[tuple[float, float, float] | None] = []
    for entry in rounds:
        values = [v for v in entry["metrics"].get("epsilon", {}).values() if isinstance(v, (int, float))]
        spread.append((min(values), statistics.median(values), max(values)) if values else None)
    kept = [(x, s) for x, s in zip(xs, spread, strict=True) if s is not None]
    if not kept:
        return
    at = [x for x, _ in kept]
    ax.fill_between(at, [s[0] for _, s in kept], [s[2] for _, s in kept], alpha=0.25, label="nodes: lowest to highest")
    ax.plot(at, [s[1] for _, s in kept], marker="o", label="median node")
    ax.plot(at, [s[2] for _, s in kept], linestyle="--", label="highest node")


def write_report(report: dict[str, Any], run_dir: Path) -> None:
    """Write report.json, report.md, the plots and report.html (all of them inline) into the run folder."""
    from federation.pages.report_page import report_page
    from federation.report_figures import plot_comparison, plot_participation

    atomic_write_json(run_dir / "report.json", report)
    markdown = report_markdown(report)
    atomic_write_text(run_dir / "report.md", markdown)
    plot_rounds(report, run_dir)
    plot_participation(report, run_dir)
    plot_comparison(report, run_dir)
    atomic_write_text(run_dir / "report.html", report_page(report, markdown=markdown, run_dir=run_dir))


def model_card(report: dict[str, Any]) -> str:
    """The bundle's model card: data, privacy guarantee, metrics, threshold and forbidden uses."""
    settings = report.get("settings", {})
    final = report.get("final") or {}
    privacy = report["privacy"]
    lines = [
        "# CESAGRAM-FL grooming-risk model",
        "",
        f"Run `{report['run_id']}` ({report['mode']}); model `{settings.get('model.name', '?')}` "
        "(frozen all-MiniLM-L6-v2 message encoder + trained head, or hashed n-grams + linear head).",
        "",
        "## Intended use",
        "",
        "Triage of chat conversations by trained staff at child helplines, police units and platforms:",
        "the model ranks conversations and raises early warnings with the lines that drove them.",
        "",
        "**It produces leads for trained people, never findings.** Do not use it to decide about a person",
        "without human review, as evidence in proceedings, for automated account actions, or on",
        "populations and languages unlike its training data. Scores are not probabilities of guilt.",
        "",
        "## Training data",
        "",
    ]
    lines += card_data_lines(report)
    lines += ["", *training_lines(report.get("training"))]
    lines += ["## Privacy", "", f"{privacy['guarantee']}."]
    lines += card_privacy_lines(privacy.get("nodes") or {})
    audit = report.get("audit")
    if audit and audit["kind"] in WHITE_KINDS:
        lines.append(
            f"- trained with a white-box privacy audit: {audit['canaries_per_node']} gradient canaries per "
            "node, in audit coordinates of their own (never exported: no canary gradient is in these weights, and "
            "canaries never count as conversations)"
        )
    if audit and audit.get("black"):
        lines.append(
            f"- trained with a black-box privacy audit: about half of {audit['black']['canaries_per_node']} canary "
            "conversations per node (random words of the public set, random labels) were in its training data: these "
            "weights learned from them; they never count as conversations"
        )
    if audit:
        lines += [f"- {line}" for line in audit_lines(audit) if line]
    if privacy.get("central"):
        c = privacy["central"]
        lines.append(f"- central: epsilon {_fmt(c['epsilon'])} at delta {c['delta']} ({c['accountant']}, unit: {c['unit']})")
    lines += ["", "## Metrics (held-out test set)", ""]
    lines += [f"- {key}: {_fmt(final[key])}" for key in (*METRIC_KEYS, "latency_f1", "speed", "erde5", "erde50") if key in final]
    lines += ["", *prevalence_lines(final.get("at_prevalence")), *real_negative_lines(report.get("real_negatives"))]
    lines += behaviour_lines(report.get("behaviour"))
    lines += [
        "## Decision threshold",
        "",
        f"{_fmt(final.get('threshold'))}, chosen to maximise F0.5 on validation data (precision weighs more than recall).",
        "",
    ]
    return "\n".join(lines)


def card_data_lines(report: dict[str, Any]) -> list[str]:
    """The model card's training data: a line per node, or per kind above :data:`NODE_ROWS` nodes."""
    nodes = report.get("nodes") or {}
    if len(nodes) <= NODE_ROWS:
        return [
            f"- {name} ({node['kind']}): {node['conversations']} conversations, {node['positives']} grooming"
            for name, node in nodes.items()
        ]
    return [
        f"- {kind}: {k['nodes']} nodes, {k['conversations']} conversations, {k['positives']} grooming "
        f"({k['conversations_per_node_min']:g} to {k['conversations_per_node_max']:g} conversations per node)"
        for kind, k in report_nodes_summary(report).items()
    ]


def card_privacy_lines(nodes: dict[str, dict[str, Any]]) -> list[str]:
    """The model card's per-node privacy: a line per node, or the pooled figures above :data:`NODE_ROWS` nodes."""
    if len(nodes) <= NODE_ROWS:
        return [
            f"- {name}: epsilon {_fmt(p['epsilon'])} at delta {p['delta']} ({p['accountant']} accountant, "
            f"unit: one {p['unit']}), cap {_fmt(p['cap'])}"
            for name, p in nodes.items()
        ]
    pooled = privacy_summary(nodes)
    return [
        f"- {pooled['nodes']} nodes: epsilon at most {_fmt(pooled['epsilon_max'])} (median {_fmt(pooled['epsilon_median'])}) "
        f"at delta {', '.join(str(d) for d in pooled['deltas']) or '-'} ({', '.join(pooled['accountants'])} accountant, "
        f"unit: one {', '.join(pooled['units'])}), cap at most {_fmt(pooled['cap_max'])}; "
        f"{pooled['stopped_for_budget']} stopped for their budget"
        + (f"; {pooled['over_cap']} spent more than their own cap" if pooled["over_cap"] else "")
    ]
