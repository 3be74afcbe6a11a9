"""Flower's runtime neither hangs nor leaks: a private Ray, start-up deadlines, SIGKILLed parents.

Ray's own address resolution and real (``sleep``) processes; nothing of Flower starts. The
slow test that sends SIGTERM to a real ``cesagram simulate`` is
``tests/integration/test_simulation_sigterm.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from federation.errors import ConfigError, RuntimeFailure
from deploy.flower_processes import free_port, process_name
from simulations.compose import compose
from deploy.flower_run import StartupStep, submit_run, watch_startup
from deploy.settings import RAY_CLUSTERS_ENV, RuntimeSettings
from simulations.settings import runtime_settings
from tests.processes import kill_all, left_after, stale_ray_tmpdir


# -- configuration -----------------------------------------------------------------------------
def test_runtime_defaults_are_the_configs_and_bad_values_are_one_line() -> None:
    assert runtime_settings(compose([])) == RuntimeSettings()  # conf/federation/simulation.yaml and the dataclass agree
    assert runtime_settings(compose(["federation.ray_address=10.0.0.5:6379"])).ray_address == "10.0.0.5:6379"
    with pytest.raises(ConfigError, match=r"federation.ray_address 'head' is not HOST:PORT"):
        runtime_settings(compose(["federation.ray_address=head"]))
    with pytest.raises(ConfigError, match=r"not a URL; Ray Client \(ray://\) is not supported"):
        runtime_settings(compose(["federation.ray_address='ray://head:10001'"]))
    with pytest.raises(ConfigError, match=r"federation.startup.ray_s=0.0 must be a number of seconds > 0"):
        runtime_settings(compose(["federation.startup.ray_s=0"]))  # the schema's float: 0 is read as 0.0
    with pytest.raises(ConfigError, match="Key 'typo_s' not in 'StartupConfig'"):
        compose(["federation.startup.typo_s=3"])
    with pytest.raises(ConfigError, match="federation.startup"):
        runtime_settings(compose(["+federation.startup.typo_s=3"]))


def test_private_ray_ignores_ray_address_and_a_stale_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's own resolution (what Flower's ``ray.init()`` runs): None means "start a new local instance"."""
    from ray._private.services import canonicalize_bootstrap_address

    temp = stale_ray_tmpdir()
    try:
        stale = (temp / "ray" / "ray_current_cluster").read_text().strip()
        monkeypatch.setenv("RAY_TMPDIR", str(temp))
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        port = stale.rsplit(":", 1)[1]  # Ray writes loopback as this machine's address
        assert canonicalize_bootstrap_address(None).endswith(f":{port}")  # what hung: Ray joins the stale cluster
        monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
        assert canonicalize_bootstrap_address(None).endswith(":1")
        for key, value in RuntimeSettings().ray_environment({"CESAGRAM_X": "1"}).items():
            monkeypatch.setenv(key, value)
        assert canonicalize_bootstrap_address(None) is None  # a private instance, whatever the machine knows of

        cluster = RuntimeSettings(ray_address="127.0.0.1:6390").ray_environment({"CESAGRAM_X": "1", "PYTHONPATH": "/x"})
        for key, value in cluster.items():
            monkeypatch.setenv(key, value)
        assert canonicalize_bootstrap_address(None).endswith(":6390")
        job = json.loads(cluster["RAY_JOB_CONFIG_JSON_ENV_VAR"])  # the cluster's workers get the nodes' env this way
        assert job == {"runtime_env": {"env_vars": {"CESAGRAM_X": "1"}}}
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_a_private_ray_binds_loopback_and_a_cluster_is_left_to_its_own_address() -> None:
    """Ray takes a local instance's address from the host's route; the private one must use 127.0.0.1."""
    probe = "import ray._private.services as s; print(s.get_node_ip_address())"

    def address(env: dict[str, str]) -> str:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        done = subprocess.run([sys.executable, "-c", probe], env={**base, **env}, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    assert address(RuntimeSettings().ray_environment({})) == "127.0.0.1"
    assert RAY_CLUSTERS_ENV not in RuntimeSettings(ray_address="127.0.0.1:6390").ray_environment({})


def test_an_unreachable_ray_cluster_is_one_line_before_anything_starts() -> None:
    with pytest.raises(RuntimeFailure, match=r"federation.ray_address=127.0.0.1:\d+: no Ray head answers there .*ray start --head"):
        RuntimeSettings(ray_address=f"127.0.0.1:{free_port()}").check_cluster(timeout_s=2.0)


# -- deadlines ---------------------------------------------------------------------------------
def test_a_startup_step_past_its_deadline_fails_with_its_line() -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        started = time.monotonic()
        steps = [
            StartupStep("SuperLink", 5.0, lambda: True, "never: done at once"),
            StartupStep("Ray", 0.6, lambda: False, "Ray did not start within 0.6 s"),
        ]
        with pytest.raises(RuntimeFailure, match=r"^Ray did not start within 0.6 s$"):
            watch_startup(sleeper, steps, poll_s=0.1)
        assert time.monotonic() - started < 3.0
        assert sleeper.poll() is None  # the caller stops it (submit_run does, with its tree)
        with pytest.raises(RuntimeFailure, match="SuperLink stopped"):
            watch_startup(sleeper, [], alive=lambda: "the local SuperLink stopped during the run", poll_s=0.1)
    finally:
        sleeper.kill()
        sleeper.wait()
    quick = subprocess.Popen(["sleep", "0.3"])
    assert watch_startup(quick, [StartupStep("first round", 30.0, lambda: False, "x")], poll_s=0.1) == 0


def _fake_flwr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for ``flwr``: logs how it was called, then exits with $FAKE_FLWR_EXIT or starts a child and waits."""
    script = tmp_path / "flwr"
    script.write_text(
        "#!/bin/sh\n"
        'echo "argv: $*"\necho "home: $FLWR_HOME"\n'
        '[ -n "$FAKE_FLWR_EXIT" ] && exit "$FAKE_FLWR_EXIT"\n'
        'sleep 60 &\necho "child: $!"\n'
        "wait\n"
    )
    script.chmod(0o755)
    monkeypatch.setattr("deploy.flower_run.flower_bin", lambda name: str(script) if name == "flwr" else name)
    return script


def test_submit_run_is_one_flwr_run_stream_stopped_with_its_tree_on_a_missed_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``simulate`` and ``server run`` both submit; a missed deadline stops ``flwr run`` and its children."""
    _fake_flwr(tmp_path, monkeypatch)
    log_path = tmp_path / "flower.log"
    started = time.monotonic()
    with pytest.raises(RuntimeFailure, match=r"^the first round did not finish$"):
        submit_run(
            tmp_path / "app",
            "sim",
            flwr_home=tmp_path / ".flwr",
            log_path=log_path,
            federation_config="num-supernodes=3",
            steps=[StartupStep("first round", 1.0, lambda: False, "the first round did not finish")],
        )
    assert time.monotonic() - started < 10.0
    lines = log_path.read_text().splitlines()
    assert lines[:2] == [f"argv: run {tmp_path / 'app'} sim --federation-config num-supernodes=3 --stream", f"home: {tmp_path / '.flwr'}"]
    child = int(lines[2].removeprefix("child: "))
    assert left_after({child: "sleep"}, timeout_s=10) == {}

    monkeypatch.setenv("FAKE_FLWR_EXIT", "3")  # the run's end is flwr run's exit, and its status is returned
    assert submit_run(tmp_path / "app", "cesagram", flwr_home=tmp_path / ".flwr", log_path=log_path) == 3
    assert log_path.read_text().splitlines()[3] == f"argv: run {tmp_path / 'app'} cesagram --stream"


# -- dying with the parent ---------------------------------------------------------------------
def test_children_die_with_their_sigkilled_parent(tmp_path: Path) -> None:
    """``die_with_parent`` and the SuperLink's guard: nothing survives a SIGKILLed parent.

    The parent starts a ``sleep`` directly, and, through :mod:`simulations.tree_guard`, a
    process whose own child runs in a session of its own and would live on (as Ray's agents
    do): both ``sleep`` processes must go when the parent is SIGKILLed.
    """
    grandchild = "import subprocess, time; print(subprocess.Popen(['sleep', '120'], start_new_session=True).pid, flush=True); time.sleep(120)"
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from deploy.flower_processes import die_with_parent
        child = subprocess.Popen(["sleep", "120"], start_new_session=True, preexec_fn=die_with_parent())
        print(child.pid, flush=True)
        guard = [sys.executable, "-m", "simulations.tree_guard", sys.executable, "-c", {grandchild!r}]
        subprocess.Popen(guard, start_new_session=True, preexec_fn=die_with_parent())
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    sleepers: list[int] = []
    try:
        assert parent.stdout is not None
        sleepers = [int(parent.stdout.readline()), int(parent.stdout.readline())]
        deadline = time.monotonic() + 10
        while [process_name(pid) for pid in sleepers] != ["sleep", "sleep"] and time.monotonic() < deadline:
            time.sleep(0.05)  # a forked child is still "python" until it has exec'd
        assert [process_name(pid) for pid in sleepers] == ["sleep", "sleep"]
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert left_after({pid: "sleep" for pid in sleepers}, timeout_s=15) == {}
    finally:
        kill_all([parent.pid, *sleepers])
        parent.wait(timeout=10)
