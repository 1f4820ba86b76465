"""Child processes that die with their parent: Envoy and the replicas of `run`.

Linux's PR_SET_PDEATHSIG (prctl, through ctypes) has the kernel send the child SIGTERM
when the process that started it dies, even by kill -9, so no replica or Envoy is left
running as an orphan holding its ports (and, for replicas, sending callbacks)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: no signal would ever come
        os._exit(1)


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen, with the child killed when this process dies (Linux)."""
    if sys.platform.startswith("linux"):
        parent = os.getpid()
        kwargs["preexec_fn"] = lambda: _die_with_parent(parent)
    return subprocess.Popen(args, **kwargs)
