"""A node that misbehaves on purpose (simulations and red-team tests): a mod around the honest train reply.

The node trains exactly as an honest one (same handler, same data, same ledger); then,
when its own node config gives it an attacker role (see :mod:`federation.attack`), this
mod alters the weights of the reply before they leave:

- ``nan``: every weight NaN, and one infinite;
- ``scaled``: the global weights plus ``scale`` times the honest update;
- ``sign_flip``: the global weights minus the honest update.

Metrics and node record are the honest ones, so the server sees what a faulty or
compromised node would send. The role comes from the node's config only, never from
the run config or the message: a coordinator cannot turn a node into an attacker.
"""

from __future__ import annotations

import logging

import numpy as np
from flwr.app import Context, Error, Message, RecordDict

from federation.attack import AttackSettings, virtual_node_config
from federation.errors import ConfigError
from federation.wire import FAILED, ConfigKeys, arrays_to_record, record_to_arrays

__all__ = ["attack_mod", "poisoned_arrays"]

log = logging.getLogger(__name__)


def poisoned_arrays(
    attack: AttackSettings, global_arrays: list[np.ndarray], honest: list[np.ndarray]
) -> list[np.ndarray]:
    """The weights an attacker sends instead of ``honest`` (trained from ``global_arrays``)."""
    if attack.kind == "nan":
        poisoned = [np.full_like(a, np.nan) for a in honest]
        poisoned[-1].flat[0] = np.inf
        return poisoned
    sign = float(attack.scale) if attack.kind == "scaled" else -1.0
    return [g + sign * (h - g) for g, h in zip(global_arrays, honest, strict=True)]


def attack_mod(msg: Message, context: Context, call_next):  # type: ignore[no-untyped-def]
    """Pass the honest reply through, or poison its weights when this node's config says so."""
    reply = call_next(msg, context)
    try:
        attack = AttackSettings.from_node_config(virtual_node_config(context.node_config))
    except ConfigError as error:  # a broken attacker config: say so in one line, as for any node failure
        return Message(Error(code=FAILED, reason=f"ConfigError: {error}"), reply_to=msg)
    if attack is None or reply.has_error() or ConfigKeys.ARRAYS_RECORD not in reply.content:
        return reply
    server_round = int(msg.content[ConfigKeys.CONFIG_RECORD][ConfigKeys.SERVER_ROUND])
    if server_round < attack.from_round:
        return reply
    log.warning("attacker role %s: poisoning the round %d reply", attack.kind, server_round)
    arrays = poisoned_arrays(
        attack,
        record_to_arrays(msg.content[ConfigKeys.ARRAYS_RECORD]),
        record_to_arrays(reply.content[ConfigKeys.ARRAYS_RECORD]),
    )
    content = RecordDict(dict(reply.content))
    content[ConfigKeys.ARRAYS_RECORD] = arrays_to_record(arrays)
    return Message(content, reply_to=msg)
