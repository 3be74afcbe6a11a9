"""The black-box audit's input canaries: canary conversations, their secret membership, the test.

The white-box audit (:mod:`federation.privacy.audit`) tests the DP-SGD step from inside.
This one tests the pipeline as an outsider sees it (Steinke, Nasr and Jagielski, NeurIPS
2023, black-box setting): ``m`` canary conversations per node, each put into the node's
training data by a secret fair coin, trained on exactly as a conversation is (same
sampling, clipping, noise), and afterwards scored by the *final global model* and by the
model the node received before it first trained in the run (the reference); the audit
reads nothing else. A canary the model fits better than its twin "out" ones
gives it away.

* **Canaries** are short conversations of words drawn at random from the public set's
  vocabulary (:mod:`federation.data.synthetic.public`: the public half of the phrase banks
  and the public part of the chit-chat corpus), each with a random label: no content
  predicts it, so a model can only fit it by remembering the canary. Random word strings
  are far from real chats and from each other, which is what gives the audit its power
  (canaries made of realistic chats with flipped labels were measured: a small head does
  not single them out, AUC about 0.5 even without DP). They are drawn from the node's
  name and secret, never from the run: the same texts every run, so their embeddings are
  cached once.
* **Membership** is a fair coin per canary, drawn from the node secret and the run id:
  unpredictable without the secret, stable across rounds and restarts of the run.
* **The test statistic** is how much better the final model fits the canary's own label
  than the model the node received before it first trained in the run (its
  *reference*, independent of the coins): the difference cancels most of what the
  canary's content alone makes a model score. The guesses, the bound and its confidence
  are the white-box audit's
  (:func:`federation.privacy.audit.guess_counts`, :func:`~federation.privacy.audit.summarize`),
  beside the membership-inference AUC of the same statistic.

Canaries are not records of the node: they never count among its conversations, in
``num-examples``, the validation split, a histogram or the report's node figures. They do
enter the sample rate, as the records they stand for.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from federation.data.synthetic.public import PublicSetSettings, public_conversations
from federation.data.types import Conversation, Message
from federation.errors import ConfigError, LedgerError
from federation.privacy.audit import AuditResult, guess_counts, read_run_entries, summarize, write_run_entry

__all__ = [
    "InputCanaries",
    "input_audit",
    "input_canaries",
    "load_reference",
    "membership_statistic",
    "public_vocabulary",
    "reference_path_for",
    "save_reference",
]

#: Fewest canaries: below this the bound's scan has nothing to test.
MIN_CANARIES = 10
#: Messages per canary and words per message (6 and 6: more messages helped the control a
#: little, 2 clearly less; measured in the README's privacy model).
CANARY_MESSAGES = 6
CANARY_WORDS = 6
#: Size of the public set the canaries' vocabulary is read from.
VOCABULARY_CONVERSATIONS = 300


@dataclass(frozen=True)
class InputCanaries:
    """One node's canary conversations for one run, and which of them are "in" (the secret)."""

    conversations: tuple[Conversation, ...]
    members: np.ndarray  # bool [m]
    tie_seed: int

    @property
    def included(self) -> list[Conversation]:
        """The "in" canaries: what the node trains on besides its own conversations."""
        return [c for c, member in zip(self.conversations, self.members, strict=True) if member]

    @property
    def labels(self) -> np.ndarray:
        return np.asarray([c.label for c in self.conversations], dtype=np.int64)


@lru_cache(maxsize=8)  # a node calls it at every train and evaluate of the run
def input_canaries(*, count: int, texts_seed: int, coin_seed: int, max_messages: int) -> InputCanaries:
    """``count`` canary conversations (from ``texts_seed``) and their coins (from ``coin_seed``).

    A node passes seeds derived from its secret (:meth:`NodePolicy.seed`): its name for the
    texts, its name and the run id for the coins. The result is shared: do not change it.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < MIN_CANARIES:
        raise ConfigError(f"privacy.audit_input_canaries must be an integer >= {MIN_CANARIES}, got {count!r}")
    rng = np.random.default_rng(texts_seed)
    vocabulary = public_vocabulary()
    lines = min(CANARY_MESSAGES, max_messages)
    canaries = tuple(
        Conversation(
            id=f"canary-{index:05d}",
            label=int(rng.random() < 0.5),
            messages=tuple(
                Message(author=("canary-a", "canary-b")[line % 2], text=" ".join(rng.choice(vocabulary, CANARY_WORDS)))
                for line in range(lines)
            ),
        )
        for index in range(count)
    )
    coins = np.random.default_rng(coin_seed)
    return InputCanaries(
        conversations=canaries, members=coins.random(count) < 0.5, tie_seed=int(coins.integers(2**62))
    )


@lru_cache(maxsize=1)
def public_vocabulary() -> tuple[str, ...]:
    """The words canaries are made of: every alphabetic word of 4+ letters in a public set (sorted)."""
    public = public_conversations(PublicSetSettings(conversations=VOCABULARY_CONVERSATIONS, seed=0))
    words = {w.lower() for c in public for m in c.messages for w in m.text.split() if w.isalpha() and len(w) >= 4}
    return tuple(sorted(words))


def membership_statistic(scores: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How much better the model fits each canary's own (random) label than the reference model did."""
    def fit(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return np.where(np.asarray(labels) == 1, values, 1.0 - values)

    return fit(scores) - fit(reference)


def input_audit(
    canaries: InputCanaries, scores: np.ndarray, reference: np.ndarray, *, epsilon: float, delta: float, steps: int
) -> tuple[AuditResult, float]:
    """The black-box audit of one node: the bound from the evaluated model's ``scores``, and the MIA AUC.

    ``reference`` holds the reference model's scores on the same canaries. ``epsilon`` is
    the node's accounted epsilon of this run (every DP-SGD step the "in" canaries went
    through), ``inf`` for the no-noise control.
    """
    from sklearn.metrics import roc_auc_score

    statistic = membership_statistic(scores, reference, canaries.labels)
    members = canaries.members
    counts = guess_counts(statistic, members, rng=np.random.default_rng(canaries.tie_seed))
    result = summarize(
        kind="black",
        canaries=members.size,
        canaries_in=int(members.sum()),
        scan=counts,
        epsilon=epsilon,
        delta=delta,
        steps=steps,
    )
    auc = float(roc_auc_score(members, statistic)) if 0 < members.sum() < members.size else 0.5
    return result, auc


#: How a damaged reference file is named in its one-line error.
_WHAT = "black-box audit state"


def reference_path_for(ledger: Path) -> Path:
    """Where a node keeps its black-box references: ``<ledger>.black-audit.json`` (canary scores, no data)."""
    ledger = Path(ledger)
    return ledger.with_name(ledger.name + ".black-audit.json")


def load_reference(path: Path, *, run_id: str, canaries: int) -> np.ndarray | None:
    """The run's reference scores at this node, None before its first train of the run."""
    runs = read_run_entries(path, what=_WHAT)
    if run_id not in runs:
        return None
    try:
        scores = np.asarray(runs[run_id], dtype=np.float64)
    except (TypeError, ValueError):
        raise LedgerError(f"{_WHAT} {path} is damaged; delete it to restart the node's audits") from None
    if scores.ndim != 1 or not np.isfinite(scores).all():
        raise LedgerError(f"{_WHAT} {path} is damaged; delete it to restart the node's audits")
    if scores.shape != (canaries,):
        raise ConfigError(
            f"run {run_id} started its black-box audit with {scores.size} canaries, now asks {canaries}; "
            "keep privacy.audit_input_canaries for the whole run"
        )
    return scores


def save_reference(path: Path, *, run_id: str, scores: np.ndarray) -> None:
    """Store the run's reference scores (atomically); only the last few runs are kept."""
    write_run_entry(path, run_id=run_id, entry=[float(v) for v in np.asarray(scores, dtype=np.float64)])
