"""A missing, corrupt or mismatched bundle stops the analyst's commands with one line and exit 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cesagram.cli import main
from federation.errors import ModelBundleError
from federation.scoring import load_scoring_model


@pytest.fixture
def bundle(ngram_bundle, tmp_path: Path) -> Path:  # noqa: ANN001
    """A private copy of the test bundle, free to damage."""
    return Path(shutil.copytree(ngram_bundle.model, tmp_path / "model"))


def run_failing(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def commands(model: Path, data: Path) -> list[list[str]]:
    return [
        ["score", "--model", str(model), str(data)],
        ["score", "--model", str(model), "--follow", str(data)],
        ["evaluate", "--model", str(model), str(data)],
    ]


def test_bundle_of_another_encoder_is_refused(bundle: Path, ngram_bundle, capsys) -> None:  # noqa: ANN001
    meta_path = bundle / "model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["encoder_id"] = "all-MiniLM-L6-v2@000000000000"
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    for args in commands(bundle, ngram_bundle.test_file):
        line = run_failing(args, capsys)
        assert "trained with encoder" in line and "all-MiniLM-L6-v2@000000000000" in line
    with pytest.raises(ModelBundleError):
        load_scoring_model(bundle, cache=None)


def test_missing_bundle(tmp_path: Path, ngram_bundle, capsys) -> None:  # noqa: ANN001
    for args in commands(tmp_path / "nowhere", ngram_bundle.test_file):
        assert "no such model bundle folder" in run_failing(args, capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "model.json: missing" in run_failing(commands(empty, ngram_bundle.test_file)[0], capsys)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("weights.safetensors", b"\x00garbage, not safetensors", "weights"),
        ("model.json", b"{ not json", "corrupt"),
        ("model.json", b'{"format_version": 3}', "invalid bundle metadata"),
        ("model.json", b'{"format_version": 2}', "format_version 2 is not supported"),
        ("model.json", b'{"format_version": 1}', "format_version 1 is not supported"),
    ],
)
def test_corrupt_bundle(bundle: Path, ngram_bundle, capsys, name: str, content: bytes, fragment: str) -> None:  # noqa: ANN001
    (bundle / name).write_bytes(content)
    for args in commands(bundle, ngram_bundle.test_file):
        assert fragment in run_failing(args, capsys)


def test_missing_weights(bundle: Path, ngram_bundle, capsys) -> None:  # noqa: ANN001
    (bundle / "weights.safetensors").unlink()
    assert "not found" in run_failing(commands(bundle, ngram_bundle.test_file)[0], capsys)


def test_score_without_input_or_follow_is_a_usage_error(ngram_bundle, capsys) -> None:  # noqa: ANN001
    assert main(["score", "--model", str(ngram_bundle.model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--follow" in err[0]


def test_missing_input_file_is_one_line(ngram_bundle, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for args in commands(ngram_bundle.model, tmp_path / "absent.jsonl"):
        assert "absent.jsonl" in run_failing(args, capsys)
