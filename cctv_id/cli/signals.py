"""Graceful stop on SIGINT/SIGTERM for long jobs.

The first signal asks the job to stop at the next frame boundary (it then commits its
checkpoint and marks the run interrupted); a second one exits at once with 128 + signal
number. Exiting at once is still consistent: every database write is a transaction, and
crops are published only after their transaction commits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


class StopSignals:
    def __init__(self, on_first):
        self.on_first = on_first
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, _frame):
        if self.signum is not None:
            sys.stderr.write("\nerror: stopped at once (second signal)\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self.signum = signum
        name = signal.Signals(signum).name
        sys.stderr.write(f"\n{name}: stopping at the next frame and saving a checkpoint "
                         "(send it again to quit at once)\n")
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
