"""Children that end with their parent, even when the parent is killed with SIGKILL.

A process killed with SIGKILL runs no cleanup: the workers and servers it
started would run on, orphaned. Linux's parent-death signal (prctl
PR_SET_PDEATHSIG) has the kernel signal the child instead. It is tied to the
thread that forked the child, so call it from the process's main thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a freshly forked child: have the kernel send `signum` when the parent ends.

    No-op off Linux. If the parent already ended between the fork and this call,
    the signal would never come, so the child ends now.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return  # not permitted here (seccomp): the caller's other cleanup still applies
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
