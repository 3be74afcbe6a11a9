"""The coordinator's commands that must fail before starting anything: a mismatched key, a folder that is no run."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.pki import generate_pilot_certificates


def test_server_start_refuses_a_key_that_is_not_the_certificates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    first = generate_pilot_certificates(tmp_path / "a", hosts=["x"])
    second = generate_pilot_certificates(tmp_path / "b", hosts=["x"])
    status = main(["server", "start", "--ca", str(first.ca_cert), "--cert", str(first.server_cert), "--key", str(second.server_key)])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "is not the key of" in err[-1]
    status = main(["server", "start", "--ca", str(second.ca_cert), "--cert", str(first.server_cert), "--key", str(first.server_key)])
    assert status == 2 and "was not signed by" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_no_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cesagram.cli import main

    assert main(["server", "resume", str(tmp_path)]) == 2
    assert "is not the folder of a `cesagram server run`" in capsys.readouterr().err
