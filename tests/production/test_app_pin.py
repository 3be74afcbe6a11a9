"""The SuperNode guard: a node runs only the app its operator accepted, checked before any app code runs.

FABs are built with Flower's own builder, from the app folder ``cesagram server run``
submits and from a folder that ships its own ClientApp code. The hook itself is exercised
through Flower's real ``_pull_and_store_message`` with an in-memory node state.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flwr.cli.build import build_fab_from_disk

from clients.supernode_guard import INSTALLED_RULE, check_accepted, refusal
from federation.flower_processes import write_app_dir


def cesagram_fab(tmp_path: Path, *, clientapp: str = "clients.app:app") -> bytes:
    app = write_app_dir(tmp_path / "app", {"rounds": 2, "privacy.mode": "record"}, clientapp=clientapp)
    return build_fab_from_disk(app)


def code_fab(tmp_path: Path) -> bytes:
    app = write_app_dir(tmp_path / "evil", {"rounds": 1}, clientapp="clients.app:app")
    package = app / "clients"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("from flwr.clientapp import ClientApp\napp = ClientApp()\n")  # shadows the installed one
    return build_fab_from_disk(app)


def test_the_coordinators_app_with_any_run_config_is_accepted(tmp_path: Path) -> None:
    assert refusal(cesagram_fab(tmp_path), {INSTALLED_RULE}) is None
    assert refusal(cesagram_fab(tmp_path / "secagg", clientapp="clients.secagg:app"), {INSTALLED_RULE}) is None


def test_an_app_that_ships_code_is_refused_even_naming_our_clientapp(tmp_path: Path) -> None:
    reason = refusal(code_fab(tmp_path), {INSTALLED_RULE})
    assert reason is not None and "ships its own files" in reason and "clients/app.py" in reason


def test_an_app_naming_another_clientapp_is_refused(tmp_path: Path) -> None:
    reason = refusal(cesagram_fab(tmp_path, clientapp="os:system"), {INSTALLED_RULE})
    assert reason is not None and "'os:system'" in reason


def test_a_pinned_hash_accepts_exactly_that_fab(tmp_path: Path) -> None:
    fab = code_fab(tmp_path)
    digest = hashlib.sha256(fab).hexdigest()
    assert refusal(fab, {digest}) is None
    other = cesagram_fab(tmp_path)
    reason = refusal(other, {digest})
    assert reason is not None and hashlib.sha256(other).hexdigest() in reason and "accept-app" in reason


def test_accept_app_values_are_checked() -> None:
    assert check_accepted("CESAGRAM") == INSTALLED_RULE
    assert check_accepted("A" * 64) == "a" * 64
    with pytest.raises(ValueError, match="neither"):
        check_accepted("deadbeef")
