"""Everything a node's reply may carry, each item with its type and what it reveals.

A reply item not listed here must not leave the node: the test
``tests/clients/test_node_policy.py`` calls the train and evaluate handlers and checks
every record, key and type of every reply against :data:`REPLY_ALLOW_LIST`. The README's
privacy model ("What leaves a node") is written from this table.

Guarantees, in three kinds:

- ``dp``: released under the node's record-level DP-SGD and charged to its ledger (or, for
  the audit's figures, post-processing of that mechanism's output on coordinates no
  conversation touches, with the node's secret coin flips);
- ``coarse``: an aggregate of private data, coarsened by the node's policy (counts
  rounded to ``count-granularity``, histograms of at most ``max-histogram-bins`` bins
  per class, at most ``max-evaluations-per-run`` / ``-per-day`` evaluate calls), not
  under DP;
- ``public``: chosen by the node's operator or derived from the run's public settings
  and the node's ledger, not from conversations.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.wire import ConfigKeys


@dataclass(frozen=True)
class Item:
    """One allowed reply item: the Python types Flower delivers and its guarantee."""

    types: tuple[type, ...]
    guarantee: str  # "dp" | "coarse" | "public"
    reveals: str


_INT = (int,)
_FLOAT = (float, int)
_STR = (str,)
_INT_LIST = (list,)

#: Reply items by (message type, record, key). ``ARRAYS`` stands for every array of the
#: weights record (keys "0", "1", ...).
ARRAYS = "*"
REPLY_ALLOW_LIST: dict[tuple[str, str, str], Item] = {
    # -- train replies ------------------------------------------------------------------------
    ("train", ConfigKeys.ARRAYS_RECORD, ARRAYS): Item(
        (object,), "dp", "the head's weights after DP-SGD (record-level, charged before they are sent)"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.NUM_EXAMPLES): Item(
        _INT, "coarse", "training conversations, rounded to count-granularity (FedAvg weight)"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.EPSILON): Item(
        _FLOAT, "public", "the node's total epsilon after the round (all runs), from its ledger"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.STEPS): Item(
        _INT, "coarse", "DP-SGD steps: epochs x training conversations / batch size, rounded up"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.NOISE_MULTIPLIER): Item(
        _FLOAT, "coarse", "the run's DP-SGD noise multiplier, rounded up to a multiple of 0.25 (it follows from the "
        "exact number of conversations); the server bounds the update with it"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.TRAIN_SECONDS): Item(
        _FLOAT, "coarse", "wall time of the round, in tenths of a second"
    ),
    ("train", ConfigKeys.METRICS_RECORD, ConfigKeys.ENCODE_SECONDS): Item(
        _FLOAT, "coarse", "time to load and encode the data, in tenths of a second"
    ),
    # -- evaluate replies ---------------------------------------------------------------------
    ("evaluate", ConfigKeys.METRICS_RECORD, ConfigKeys.NUM_EXAMPLES): Item(
        _INT, "coarse", "validation conversations, rounded to count-granularity"
    ),
    ("evaluate", ConfigKeys.METRICS_RECORD, ConfigKeys.HIST_POS): Item(
        _INT_LIST, "coarse", "score histogram of positive validation conversations, <= max-histogram-bins bins "
        "(dp with histogram-noise: Gaussian noise per bin, charged to the ledger)"
    ),
    ("evaluate", ConfigKeys.METRICS_RECORD, ConfigKeys.HIST_NEG): Item(
        _INT_LIST, "coarse", "score histogram of negative validation conversations, <= max-histogram-bins bins "
        "(dp with histogram-noise)"
    ),
    ("evaluate", ConfigKeys.METRICS_RECORD, ConfigKeys.EVAL_SECONDS): Item(
        _FLOAT, "coarse", "wall time of the evaluation, in tenths of a second"
    ),
    **{
        ("evaluate", ConfigKeys.METRICS_RECORD, f"{ConfigKeys.EARLY_PREFIX}{key}"): Item(
            _INT, "coarse", f"early-warning {key.upper()} count on the validation split, rounded to count-granularity "
            "(with a threshold only)"
        )
        for key in ("tp", "fp", "fn", "tn")
    },
    ("evaluate", ConfigKeys.METRICS_RECORD, f"{ConfigKeys.EARLY_PREFIX}latency-counts"): Item(
        _INT_LIST, "coarse", "true positives per warning latency, max-latency-bins bins; their cumulative sums are "
        "rounded to count-granularity, so every bin is a multiple of it and they sum to the rounded TP "
        "(with a threshold only)"
    ),
    ("evaluate", ConfigKeys.METRICS_RECORD, f"{ConfigKeys.EARLY_PREFIX}lc5-sum"): Item(
        _FLOAT, "coarse", "ERDE-5 latency cost per true positive, rounded to 0.01, times the rounded TP "
        "(with a threshold only)"
    ),
    ("evaluate", ConfigKeys.METRICS_RECORD, f"{ConfigKeys.EARLY_PREFIX}lc50-sum"): Item(
        _FLOAT, "coarse", "ERDE-50 latency cost per true positive, rounded to 0.01, times the rounded TP "
        "(with a threshold only)"
    ),
}

#: The node's one-run privacy audit (train replies, only when the run asks privacy.audit and the
#: node's policy accepts it). Computed from the canaries' audit coordinates: the DP mechanism's
#: noisy output there (post-processing of DP-SGD output) and the node's secret coin flips. No
#: conversation's gradient reaches those coordinates, so the figures are independent of every
#: conversation given the mechanism's noise multiplier, sample rate and steps (already sent).
_AUDIT = "dp"
REPLY_ALLOW_LIST.update(
    {
        ("train", ConfigKeys.METRICS_RECORD, key): Item(types, _AUDIT, reveals)
        for key, types, reveals in (
            (ConfigKeys.AUDIT_CANARIES_IN, _INT, "canaries the node's secret coin flips put in (not conversations)"),
            (ConfigKeys.AUDIT_CANARIES_OUT, _INT, "canaries left out by the coin flips"),
            (ConfigKeys.AUDIT_GUESSES, _INT, "guesses of the scan point with the best bound"),
            (ConfigKeys.AUDIT_CORRECT, _INT, "correct guesses there"),
            (ConfigKeys.AUDIT_LOWER_BOUND, _FLOAT, "the one-run empirical lower bound on the run's epsilon at the node"),
            (ConfigKeys.AUDIT_CONFIDENCE, _FLOAT, "the bound's confidence (0.95)"),
            (ConfigKeys.AUDIT_EPSILON, _FLOAT, "accounted epsilon of this run's steps at the node (from its ledger)"),
            (ConfigKeys.AUDIT_STEPS, _INT, "DP-SGD steps the canaries went through (the sum of steps already sent)"),
            (ConfigKeys.AUDIT_SCAN_GUESSES, _INT_LIST, "guesses at each point of the fixed scan (follow from the canaries)"),
            (ConfigKeys.AUDIT_SCAN_CORRECT, _INT_LIST, "correct guesses at each point of the scan (for the run's pooled test)"),
        )
    }
)

#: The node's black-box audit (evaluate replies, only when the run asks privacy.audit black or both
#: and the node's policy accepts it). Computed from the evaluated model (the server's own global
#: model), the node's canary conversations (random words of the public set, drawn from its secret)
#: and its secret coin flips: no conversation of the node enters the figures.
REPLY_ALLOW_LIST.update(
    {
        ("evaluate", ConfigKeys.METRICS_RECORD, key): Item(types, "public", reveals)
        for key, types, reveals in (
            (ConfigKeys.BLACK_CANARIES_IN, _INT, "canary conversations the coin flips put into training (not the node's)"),
            (ConfigKeys.BLACK_CANARIES_OUT, _INT, "canary conversations left out"),
            (ConfigKeys.BLACK_GUESSES, _INT, "guesses of the scan point with the best bound"),
            (ConfigKeys.BLACK_CORRECT, _INT, "correct guesses there"),
            (ConfigKeys.BLACK_LOWER_BOUND, _FLOAT, "the black-box lower bound on the run's epsilon at the node"),
            (ConfigKeys.BLACK_CONFIDENCE, _FLOAT, "the bound's confidence (0.95)"),
            (ConfigKeys.BLACK_EPSILON, _FLOAT, "accounted epsilon of this run at the node so far (from its ledger)"),
            (ConfigKeys.BLACK_MIA_AUC, _FLOAT, "membership-inference AUC on the canaries, rounded to 1e-4"),
            (ConfigKeys.BLACK_STEPS, _INT, "DP-SGD steps of this run at the node so far (the sum of steps already sent)"),
            (ConfigKeys.BLACK_SCAN_GUESSES, _INT_LIST, "guesses at each point of the fixed scan (follow from the canaries)"),
            (ConfigKeys.BLACK_SCAN_CORRECT, _INT_LIST, "correct guesses at each point of the scan (for the pooled test)"),
        )
    }
)

#: The node record, in both replies: who the node is and its privacy settings.
for _kind in ("train", "evaluate"):
    REPLY_ALLOW_LIST.update(
        {
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.NODE_NAME): Item(_STR, "public", "the node's name (operator's)"),
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.NODE_KIND): Item(_STR, "public", "hotline / police / platform"),
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.CAP): Item(_FLOAT, "public", "the node's lifetime epsilon cap"),
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.DELTA): Item(_FLOAT, "public", "the node's delta"),
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.CONVERSATIONS): Item(
                _INT, "coarse", "conversations held, rounded to count-granularity"
            ),
            (_kind, ConfigKeys.NODE_RECORD, ConfigKeys.POSITIVES): Item(
                _INT, "coarse", "grooming conversations held, rounded to count-granularity"
            ),
        }
    )

#: Train replies only: the accountant the node's own ledger composes its spend with.
REPLY_ALLOW_LIST[("train", ConfigKeys.NODE_RECORD, ConfigKeys.ACCOUNTANT)] = Item(
    _STR, "public", "the accountant (rdp or prv) the node's ledger composes its epsilon with"
)

#: What a node computes and never sends (documented so that nobody adds it back unknowingly).
NEVER_SENT = {
    ConfigKeys.TRAIN_LOSS: "loss on private data, without noise, on weights the server chose (a membership test)",
    ConfigKeys.EVAL_LOSS: "loss on the validation split, without noise (the same attack)",
    "texts, author ids, per-conversation scores or labels": "raw data",
}


def allowed(kind: str, record: str, key: str) -> Item | None:
    """The allow-list entry of one reply item, or None when it must not leave the node."""
    if record == ConfigKeys.ARRAYS_RECORD:
        return REPLY_ALLOW_LIST.get((kind, record, ARRAYS))
    return REPLY_ALLOW_LIST.get((kind, record, key))
