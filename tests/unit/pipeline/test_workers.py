"""Stage threads: order, backpressure, error hand-over, early close."""

from __future__ import annotations

import threading
import time

import pytest

from cctv_id.pipeline.workers import Prefetcher, SerialWorker


def test_prefetcher_preserves_order_and_forwards_errors():
    assert list(Prefetcher(range(100), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("decoder exploded")

    got = []
    with pytest.raises(ValueError, match="exploded"):
        for x in Prefetcher(broken()):
            got.append(x)
    assert got == [1]


def test_prefetcher_close_stops_a_blocked_producer():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    p = Prefetcher(endless(), depth=2)
    it = iter(p)
    assert next(it) == 0
    p.close()
    n = len(produced)
    time.sleep(0.2)
    assert len(produced) == n and n <= 5, "producer kept running or ran far ahead"


def test_serial_worker_runs_in_order_off_the_caller_thread():
    seen, threads = [], set()
    w = SerialWorker(depth=2)
    for i in range(20):
        w.submit(lambda i=i: (seen.append(i), threads.add(threading.get_ident())))
    w.drain()
    w.close()
    assert seen == list(range(20))
    assert threading.get_ident() not in threads


def test_serial_worker_reports_the_first_error_and_skips_the_rest():
    seen = []
    w = SerialWorker()
    w.submit(lambda: seen.append(1))
    w.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    w.submit(lambda: seen.append(3))
    with pytest.raises(OSError, match="disk full"):
        w.drain()
    assert seen == [1] and w.failed
    w.close()
