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
from deploy.flower_processes import write_app_dir


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


def test_the_hook_refuses_inside_flowers_own_pull_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower 1.42's ``_pull_and_store_message`` with the guard installed: a refused run is never stored."""
    from dataclasses import replace

    import flwr.supernode.start_client_internal as internal
    from flwr.app import ConfigRecord, Message, RecordDict
    from flwr.app.metadata import Metadata
    from flwr.supercore.fab import Fab
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.supercore.run import Run
    from flwr.supernode.nodestate.in_memory_nodestate import InMemoryNodeState

    from clients.supernode_guard import install

    for name in ("_pull_and_store_message", "_verify_fab", "FAB_VERIFICATION_ERROR"):
        monkeypatch.setattr(internal, name, getattr(internal, name))  # restored after the test
    install({INSTALLED_RULE}, node_name="node-7")

    def pull(run_id: int, content: bytes) -> InMemoryNodeState:
        store = ObjectStoreFactory().store()
        state = InMemoryNodeState(store)
        state.set_node_id(7)
        metadata = Metadata(
            run_id=run_id, message_id="", src_node_id=1, dst_node_id=7, reply_to_message_id="", group_id="1",
            created_at=0.0, ttl=600, message_type="train",
        )  # fmt: skip
        message = Message(RecordDict({"config": ConfigRecord({"server-round": 1})}), metadata=metadata)
        message.metadata.__dict__["_message_id"] = message.object_id
        objects = get_all_nested_objects(message)
        digest = hashlib.sha256(content).hexdigest()
        internal._pull_and_store_message(
            state=state,
            object_store=store,
            node_config={},
            receive=lambda: (message, get_object_tree(message)),
            get_run=lambda rid: replace(Run.create_empty(rid), fab_hash=digest),
            get_fab=lambda fab_hash, rid: Fab(fab_hash, content, {}),
            pull_object=lambda rid, obj_id: objects[obj_id].deflate(),
            confirm_message_received=lambda rid, mid: None,
            trusted_entities=None,
        )
        return state

    refused = pull(11, code_fab(tmp_path / "evil"))
    assert refused.get_run(11) is None  # neither the run nor its FAB was stored: no ClientApp can start
    [reply] = refused.get_messages_legacy(is_reply=True)
    assert reply.error.code == 4003 and reply.error.reason.startswith("node-7: declined: the run's app ships its own files")

    accepted = pull(12, cesagram_fab(tmp_path / "ours"))
    assert accepted.get_run(12) is not None
    assert accepted.get_messages_legacy(is_reply=True) == []
