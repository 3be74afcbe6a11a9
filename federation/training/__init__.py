"""The one local training loop and the one evaluation, DP or not.

Nodes (the Flower ClientApp), the centralised and local-only baselines and the tests
all call :func:`train` and :func:`evaluate`; a node that must account for its privacy
spend calls :func:`train_with_ledger`, which runs :func:`train` inside the ledger
transaction of :mod:`federation.privacy.budget` (budget checked before, spend recorded
before the weights leave).

One job a module: ``settings`` (what a call takes and gives back), ``sampling`` (batches
and training windows), ``steps`` (one plain or DP-SGD step), ``canaries`` (the white-box
audit's coordinates in a call), ``loop`` (:func:`train`), ``evaluation``
(:func:`evaluate`) and ``ledgered`` (:func:`train_with_ledger`, :func:`train_audit_control`).
"""

from federation.training.evaluation import evaluate
from federation.training.ledgered import train_audit_control, train_with_ledger
from federation.training.loop import train
from federation.training.settings import DPParams, EvalResult, TrainResult, TrainSettings, steps_per_call

__all__ = [
    "DPParams",
    "EvalResult",
    "TrainResult",
    "TrainSettings",
    "evaluate",
    "steps_per_call",
    "train",
    "train_audit_control",
    "train_with_ledger",
]
