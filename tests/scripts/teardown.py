"""How a multi-process test script ends: every rank leaves the process group in order.

A rank that simply returns while another still works in the group, or a bare
``destroy_process_group()`` on one rank while the other is still busy, ends by chance: a gloo
worker thread that still holds the last collective needs the GIL to free it, and gets it too
late. The process then aborts at interpreter exit ("terminate called without an active
exception") or hangs in the group's destructor. A barrier first means every rank is done with
every collective, and only then is the group destroyed, on every rank.

After that, at the end of the script's function, ``end_process()``: a rank that left a group
exits there, before the function's objects (a DDP-wrapped model, its reducer) are torn down and
before the interpreter's own teardown. Now and then a two-rank gloo run of a Trainer hung in
that teardown after the group was gone: the watchdog showed no Python frame below the script's
``main()`` call and no thread of ours, so native destructors freeing ``main()``'s objects.
Python's ``atexit`` handlers (a client's last flush) still run first.

``watchdog()`` turns a hang that is left into a failure that shows where each thread was.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import sys

import torch.distributed as dist

WATCHDOG_S = 120  # a run takes seconds; the tests wait 150-240 s before they give up
_left_a_group = False


def leave_process_group() -> None:
    """Barrier, then destroy the default process group, on every rank; no-op in one process."""
    global _left_a_group
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _left_a_group = True


def end_process() -> None:
    """After ``leave_process_group()`` left a group: run the ``atexit`` handlers, flush, and exit
    0 without the interpreter's teardown. Otherwise return, and the script ends as usual."""
    if not _left_a_group:
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def watchdog(seconds: float = WATCHDOG_S) -> None:
    """If this process still runs after ``seconds``, print every thread's stack and exit(1).

    A hang then fails the test with the place it hung, not a bare timeout of the launcher.
    """
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)
