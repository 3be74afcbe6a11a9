"""``python -m simulations.tree_guard ARGV...``: run ARGV; when told to stop, stop ARGV's whole tree by PID.

Why: if ``cesagram simulate`` is killed outright (SIGKILL, the OOM killer), no clean-up
runs in it. The kernel's parent-death signal (:func:`deploy.flower_processes.die_with_parent`)
reaches its child, and Flower's processes follow their parents, but Ray's agents (the
dashboard and runtime-env agents under the raylet) then wait about two minutes on a GCS
that is gone before they exit, holding their ports. This guard is the SuperLink's parent
and gets that signal instead: it stops every descendant it finds (SIGTERM, then SIGKILL),
Ray's included, and exits. It imports nothing heavy, so it costs a fraction of a second.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from types import FrameType

from deploy.flower_processes import stop_tree

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise(signum: int, _frame: FrameType | None) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: None)  # once: the clean-up below is bounded
    raise _Stop(signum)


def main(argv: list[str]) -> int:
    """Run ``argv`` in this process group; return its status, or 128 + the signal that stopped us."""
    if not argv:
        print("usage: python -m simulations.tree_guard COMMAND [ARG...]", file=sys.stderr)
        return 2
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise)
    child = subprocess.Popen(argv)  # noqa: S603 - the caller's fixed argv, no shell
    try:
        status = child.wait()
    except _Stop as stop:
        stop_tree(child, grace_s=10.0)
        return 128 + stop.signum
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
