"""Where a node finds its own data, ledger and privacy cap.

A real node (SuperNode) gets them from its own ``--node-config``, set by its operator: the
coordinator's run config cannot point it at other files or raise its cap. A virtual node
of a simulation only has Flower's ``partition-id`` and takes the researcher's settings from
the run config, where the researcher is every node's operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.data.nodes import node_file
from federation.data.store import STORE_MANIFEST
from federation.errors import ConfigError
from federation.runconfig import RunSettings

DEFAULT_DELTA = 1e-5


@dataclass(frozen=True)
class NodeSettings:
    """One node's own settings, resolved once per message."""

    name: str
    kind: str
    data_path: Path
    ledger_path: Path
    cap: float
    delta: float
    simulated: bool
    #: The node's index in a sharded store at ``data_path`` (a cross-device simulation), else None.
    store_node: int | None = None


def _number(node_config: Mapping[str, Any], key: str) -> float:
    value = node_config[key]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"node config {key}={value!r} is not a number") from None
    if number <= 0:
        raise ConfigError(f"node config {key}={value!r} must be > 0")
    return number


def resolve_node(node_config: Mapping[str, Any], run: RunSettings) -> NodeSettings:
    """Resolve this node's settings from its node config (and, in simulation, the run config)."""
    if "data-path" in node_config:
        missing = [key for key in ("ledger-path", "cap") if key not in node_config]
        if missing:
            raise ConfigError(
                f"node config lacks {', '.join(missing)}: start the node with "
                "`cesagram node start --data DATA --ledger LEDGER --cap EPSILON`"
            )
        data_path = Path(str(node_config["data-path"]))
        return NodeSettings(
            name=str(node_config.get("name", data_path.stem)),
            kind=str(node_config.get("kind", "unknown")),
            data_path=data_path,
            ledger_path=Path(str(node_config["ledger-path"])),
            cap=_number(node_config, "cap"),
            delta=_number(node_config, "delta") if "delta" in node_config else DEFAULT_DELTA,
            simulated=False,
        )
    if "partition-id" in node_config:
        index = int(node_config["partition-id"])
        if not run.data_dir or not run.ledger_dir:
            raise ConfigError("run config lacks data-dir/ledger-dir, which a simulated node needs")
        cap = run.privacy.simulated_cap
        data_path = node_file(Path(run.data_dir), index)
        return NodeSettings(
            name=f"node-{index}",
            kind=run.kind_of(index),
            data_path=data_path,
            ledger_path=Path(run.ledger_dir) / f"node-{index}.json",
            cap=cap,
            delta=run.privacy.delta,
            simulated=True,
            store_node=index if data_path.name == STORE_MANIFEST else None,
        )
    raise ConfigError("node config has neither data-path (a real node) nor partition-id (a simulated node)")
