"""The command layer's console: progress bars from the library's callbacks, INFO logs off the console."""

from __future__ import annotations

import io
import logging

from cesagram.console import Bars, quiet_console_logs


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_off_a_terminal_print_one_closing_line_each_and_sum_calls() -> None:
    stream = io.StringIO()
    with Bars(stream=stream) as bars:
        encode = bars.tracker("encoding texts", unit="texts")
        for done in (0, 64, 100):  # one encoder call of 100 texts
            encode(done, 100)
        for done in (0, 20):  # a second call adds its 20
            encode(done, 20)
        bars.tracker("training", unit="rounds")(0, 0)
        assert stream.getvalue() == ""  # nothing while it runs
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("encoding texts: 120 of 120 texts in ")
    assert lines[1] == "training: nothing to do"
    assert len(lines) == 2


def test_bars_off_a_terminal_can_stay_silent() -> None:
    stream = io.StringIO()
    with Bars(stream=stream, plain=False) as bars:
        bars.tracker("encoding texts", unit="texts")(5, 5)
    assert stream.getvalue() == ""


def test_bars_on_a_terminal_draw_rich_bars() -> None:
    stream = _Terminal()
    with Bars(stream=stream) as bars:
        assert bars.live
        track = bars.tracker("encoding texts", unit="texts")
        track(0, 10)
        track(10, 10)
    assert "encoding texts" in stream.getvalue() and "10/10" in stream.getvalue()


def test_console_logs_keep_warnings_and_the_file_keeps_everything(tmp_path) -> None:  # noqa: ANN001
    root = logging.getLogger()
    console_stream = io.StringIO()
    console = logging.StreamHandler(console_stream)
    file = logging.FileHandler(tmp_path / "main.log")
    saved = root.level
    root.addHandler(console)
    root.addHandler(file)
    root.setLevel(logging.INFO)
    log = logging.getLogger("tests.console")
    try:
        with quiet_console_logs(verbose=False):
            log.info("per-node detail")
            log.warning("a warning")
        with quiet_console_logs(verbose=True):
            log.info("shown with -v")
    finally:
        root.removeHandler(console)
        root.removeHandler(file)
        file.close()
        root.setLevel(saved)
    assert console_stream.getvalue().splitlines() == ["a warning", "shown with -v"]
    assert (tmp_path / "main.log").read_text().splitlines() == ["per-node detail", "a warning", "shown with -v"]
