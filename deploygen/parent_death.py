"""Children that end with their parent, even when the parent is killed with SIGKILL.

A process killed with SIGKILL runs no cleanup: the render workers and drill servers it
started would run on, orphaned. Linux's parent-death signal (prctl PR_SET_PDEATHSIG)
has the kernel signal the child instead. Its limits, which its callers design around:
it is sent to direct children only; it fires when the *thread* that forked the child
exits (fork from the main thread); a change of user clears it (set it after one).
"""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1
# Loaded now, in the parent: a child between fork and exec must not load a library.
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform.startswith("linux") else None


def die_with_parent(signum: int, parent: int) -> None:
    """In a freshly forked child of `parent`: the kernel sends `signum` when `parent` ends.

    No-op off Linux. If `parent` already ended between the fork and this call, the signal
    would never come, so the child exits at once.
    """
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, int(signum))
    if os.getppid() != parent:
        os._exit(1)
