"""Child processes that die with their parent: Envoy and the replicas of `run`.

Linux's PR_SET_PDEATHSIG has the kernel send the child SIGTERM when the process that
started it dies, even by kill -9, so no replica or Envoy is left running as an orphan
holding its ports (and, for replicas, sending callbacks). util-linux's `setpriv
--pdeathsig` sets it and then execs the program. Not a preexec_fn: Python code between
fork and exec in a process whose gRPC threads are busy made the child abort (gRPC skips
its fork handlers then; Envoy started beside a running server exited with SIGABRT)."""

from __future__ import annotations

import shutil
import subprocess
import sys


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen, with the child killed when this process dies (Linux)."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    if setpriv:  # util-linux, on every Debian system; the pid stays the program's (setpriv execs it)
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    return subprocess.Popen(args, **kwargs)
