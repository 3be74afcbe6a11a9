"""Flower's SuperNode, refusing every run of an app its operator did not accept.

Why here: code inside a submitted app cannot be trusted to check itself, and Flower's
own check (``flower-supernode --trusted-entities``) needs verification records that
only Flower's hosted platform writes; a self-hosted SuperLink sends none, so with it
every run is refused (``flwr/supernode/start_client_internal.py``, ``valid_license``).
The one place that sees a run's app (its FAB) before any of it runs is the SuperNode's
pull loop, which fetches the FAB of an unknown run and stores it for the ClientApp
process. This module runs ``flower-supernode`` in-process with that fetch wrapped:

- the FAB's SHA-256 is computed here from its bytes (the SuperLink's word is not taken);
- it is accepted if the hash is one the operator pinned (``--accept-app HASH``), or,
  under the rule ``cesagram`` (the default), if the FAB holds no code at all (only its
  ``pyproject.toml`` and Flower's manifest) and names this package's own ClientApp, so
  that the code that runs next to the data is the ``cesagram-fl`` the operator installed;
- otherwise Flower's own refusal path answers the message with an error reply naming
  the node and the reason, and neither the run nor its FAB is stored: no ClientApp
  process is started for it.

This relies on two names inside Flower 1.42 (``_pull_and_store_message`` and
``_verify_fab``); :func:`install` fails loudly if a Flower upgrade removes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

from deploy.flower_processes import CLIENT_APP, SECAGG_CLIENT_APP
from federation.wire import DECLINED_POLICY

#: Environment of the guarded SuperNode: the accepted apps (JSON list) and the node's name.
ACCEPT_ENV = "CESAGRAM_ACCEPT_APPS"
NAME_ENV = "CESAGRAM_NODE_NAME"
#: The rule accepting FABs that carry no code and name the installed cesagram ClientApp.
INSTALLED_RULE = "cesagram"
_ALLOWED_MEMBERS = frozenset({"pyproject.toml", ".info/CONTENT"})
_MARKER = "accepted by the node's --accept-app"


def check_accepted(value: str) -> str:
    """``value`` if it is a SHA-256 hex digest or :data:`INSTALLED_RULE`, else ValueError."""
    text = value.strip().lower()
    if text == INSTALLED_RULE or (len(text) == 64 and all(c in "0123456789abcdef" for c in text)):
        return text
    raise ValueError(f"--accept-app {value!r} is neither a FAB's SHA-256 (64 hex digits) nor {INSTALLED_RULE!r}")


def _installed_app_reason(content: bytes) -> str | None:
    """None if the FAB carries no code and names the installed ClientApp, else why not."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as fab:
            members = set(fab.namelist())
            extra = sorted(members - _ALLOWED_MEMBERS)
            if extra:
                shown = ", ".join(extra[:3]) + (" ..." if len(extra) > 3 else "")
                return f"the run's app ships its own files ({shown}); this node runs only its installed cesagram-fl"
            pyproject = tomllib.loads(fab.read("pyproject.toml").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "the run's app is not a readable FAB"
    clientapp = pyproject.get("tool", {}).get("flwr", {}).get("app", {}).get("components", {}).get("clientapp")
    if clientapp not in (CLIENT_APP, SECAGG_CLIENT_APP):
        return f"the run's app names clientapp {clientapp!r}; this node runs {CLIENT_APP} or {SECAGG_CLIENT_APP} only"
    return None


def refusal(content: bytes, accepted: Iterable[str]) -> str | None:
    """None if this node accepts the FAB ``content``, else a one-line reason."""
    accepted = set(accepted)
    digest = hashlib.sha256(content).hexdigest()
    if digest in accepted:
        return None
    if INSTALLED_RULE in accepted:
        reason = _installed_app_reason(content)
        if reason is None:
            return None
        return f"{reason} (app sha256 {digest[:16]}..., accept-app)"
    return f"the run's app (sha256 {digest}) is not one this node accepts (accept-app)"


def install(accepted: Iterable[str], *, node_name: str, log: Callable[[str], None] | None = None) -> None:
    """Wrap the SuperNode's FAB fetch with :func:`refusal` (call before Flower starts)."""
    import flwr.supernode.start_client_internal as internal
    from flwr.app import Error
    from flwr.supercore.fab import Fab

    accepted = frozenset(accepted)
    if not accepted:
        raise ValueError("no accepted app: give --accept-app")
    original = getattr(internal, "_pull_and_store_message", None)
    if original is None or not hasattr(internal, "_verify_fab") or not hasattr(internal, "FAB_VERIFICATION_ERROR"):
        raise RuntimeError("this Flower version has no SuperNode FAB check to hook; the app pin cannot be enforced")

    def pull_and_store_message(**kwargs: Any) -> Any:
        get_fab = kwargs["get_fab"]

        def checked_get_fab(fab_hash: str, run_id: int) -> Fab:
            fab = get_fab(fab_hash, run_id)
            reason = refusal(fab.content, accepted)
            if reason is None:
                return Fab(fab.hash_str, fab.content, {**fab.verifications, "valid_license": _MARKER})
            if log is not None:
                log(f"refusing run {run_id}: {reason}")
            internal.FAB_VERIFICATION_ERROR = Error(DECLINED_POLICY, f"{node_name}: declined: {reason}")
            return Fab(fab.hash_str, fab.content, {})  # Flower then replies with the error and stores nothing

        kwargs["get_fab"] = checked_get_fab
        kwargs["trusted_entities"] = {"cesagram-node": "app pin"}  # makes Flower run its verification branch
        return original(**kwargs)

    internal._pull_and_store_message = pull_and_store_message
    internal._verify_fab = lambda fab, _entities: fab.verifications.get("valid_license") == _MARKER


def main() -> None:
    """``python -m clients.supernode_guard FLOWER-SUPERNODE-ARGS...`` (started by ``cesagram node start``)."""
    try:
        accepted = [check_accepted(v) for v in json.loads(os.environ[ACCEPT_ENV])]
    except (KeyError, ValueError, TypeError) as error:
        sys.stderr.write(f"cesagram supernode guard: {ACCEPT_ENV} is missing or invalid ({error})\n")
        raise SystemExit(2) from None
    name = os.environ.get(NAME_ENV, "node")

    def log(text: str) -> None:
        sys.stdout.write(f"[cesagram] {text}\n")
        sys.stdout.flush()

    install(accepted, node_name=name, log=log)
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *sys.argv[1:]]
    flower_supernode()


if __name__ == "__main__":
    main()
