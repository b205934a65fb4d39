"""Graceful stop on SIGINT/SIGTERM for long jobs (``process``, ``monitor``).

The first signal asks the job to stop (``process`` at the next frame boundary: it then
commits its checkpoint and marks the run interrupted; ``monitor`` stops its readers and
stores open tracks); a second one exits at once with 128 + signal number. Exiting at once is still consistent: every database write is a transaction, and
crops are published only after their transaction commits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


STOPPING_WITH_CHECKPOINT = "stopping at the next frame and saving a checkpoint"


class StopSignals:
    """Calls ``on_first`` on the first SIGINT/SIGTERM (after writing ``announce`` to stderr,
    unless it is None: a daemon logs its own stop); exits at once with 128 + signal on the
    next one, also after the job has stopped."""

    def __init__(self, on_first, announce: str | None = STOPPING_WITH_CHECKPOINT):
        self.on_first = on_first
        self.announce = announce
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, _frame):
        if self.signum is not None:
            sys.stderr.write("\nerror: stopped at once (second signal)\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        name = signal.Signals(signum).name
        if self.announce:
            sys.stderr.write(f"\n{name}: {self.announce} (send it again to quit at once)\n")
            sys.stderr.flush()
        self.on_first()

    @contextlib.contextmanager
    def installed(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            # once stopping, a second signal must still quit at once with 128 + signal, also
            # when the job stopped before it arrived (the command is on its way out then)
            if self.signum is None:
                for sig, handler in self._previous.items():
                    signal.signal(sig, handler)
