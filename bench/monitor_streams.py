"""How many live 768x576 10 fps streams one `cctv-id monitor` process sustains, and how fast
hits reach the database — measured against a real RTSP server on loopback.

The street composite (CelebA faces pasted into vtest.avi; enrolled people known) is served,
looped in real time, by the GStreamer RTSP server of the tests. For N = 1, 2, 3, ... cameras
(N RTSP sessions of that one stream, each decoded, detected, tracked and recognised on its
own, recognition micro-batched across them) the monitor service runs for ``--seconds`` and
the script prints, per N:
  received fps      frames decoded per camera per second (the stream gives 10);
  handled fps       frames the pipeline took from the live buffer per camera per second;
  dropped           the share of frames the live buffer dropped because the pipeline was behind;
  latency p50/p95   arrival of the frame that completed a decision -> its hit row committed;
  batch             mean faces per recogniser pass (micro-batching across cameras);
and, as the baseline in the same process, decode-only: N readers with no pipeline behind
them (the most a camera can deliver here). A setting is "sustained" when no camera drops
more than 10 % of its frames.

    python bench/monitor_streams.py [--seconds 40] [--max-streams 4]

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "helpers"))


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def decode_only(url: str, n: int, seconds: float) -> float:
    from cctv_id.config import StreamConfig
    from cctv_id.video.live import LiveBuffer, StreamReader

    readers = [StreamReader(f"d{i}", url, StreamConfig(), LiveBuffer(1)) for i in range(n)]
    for r in readers:
        r.start()
    time.sleep(2.0)  # connect, first key frame
    start = [r.stats.frames for r in readers]
    time.sleep(seconds)
    got = [r.stats.frames - s for r, s in zip(readers, start)]
    for r in readers:
        r.stop()
    for r in readers:
        r.join(5)
    return statistics.mean(got) / seconds


def monitor(url: str, n: int, seconds: float, db: str, work: Path, extra: dict) -> dict:
    import yaml

    from cctv_id.config import deep_merge

    from cctv_id.cli.context import AppContext
    from cctv_id.daemon.service import MonitorService

    cfg_path = work / f"monitor-{n}.yaml"
    cfg_path.write_text(yaml.safe_dump(deep_merge({
        "db": db, "data_dir": str(work / "data"), "preset": "live",
        "monitor": {"hit_every_s": 3.0},
        "cameras": {f"cam{i}": {"url": url} for i in range(n)},
    }, extra)))
    app = AppContext(config_file=str(cfg_path))
    app.default_preset = "live"
    service = MonitorService(app)
    service.start(http=False)
    time.sleep(3.0)  # connect, warm up
    w0 = {w.name: (w.buffer.received, w.buffer.dropped, w.stats.frames) for w in service.workers}
    t0 = time.monotonic()
    time.sleep(seconds)
    dt = time.monotonic() - t0
    rows = []
    for w in service.workers:
        rec0, drop0, fr0 = w0[w.name]
        received, dropped = w.buffer.received - rec0, w.buffer.dropped - drop0
        rows.append({"received": received / dt, "handled": (w.stats.frames - fr0) / dt,
                     "dropped": dropped / max(1, received)})
    service.stop()
    service.shutdown()
    latencies = [x for w in service.workers for x in w.stats.latencies_s]
    hits = sum(w.stats.hits for w in service.workers)
    app.close()
    return {
        "received": statistics.mean(r["received"] for r in rows),
        "handled": statistics.mean(r["handled"] for r in rows),
        "dropped_max": max(r["dropped"] for r in rows),
        "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95), "hits": hits,
        "batch": service.batcher.stats.mean_batch,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--max-streams", type=int, default=4)
    ap.add_argument("--extra", default="{}", metavar="JSON",
                    help='config merged over the monitor config, e.g. \'{"detector": {"threads": 1}}\'')
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    import street_scenario as S
    from rtsp import RtspServer, rtsp_available

    from cctv_id.cli.context import AppContext
    from cctv_id.watchlist.enrol import commit, prepare

    reason = rtsp_available()
    if reason:
        sys.exit(f"cannot run: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario = S.build(work, SHARED / "faces" / "celeba", SHARED / "video" / "vtest.avi",
                           seconds=15.0)
        db = f"sqlite:///{work / 'bench.db'}"
        app = AppContext(db_option=db)
        items = prepare([(p, ph) for p, photos in scenario.enrol_photos.items() for ph in photos],
                        app.detector(), app.encoder(), largest=True)
        commit(app.repo(), items, app.encoder().name)
        app.close()
        with RtspServer({"street": scenario.video}) as server:
            url = server.url("street")
            print(f"stream: street composite 768x576 @ 10 fps, {args.seconds:.0f} s per setting, "
                  f"live preset (detector every 2nd frame, motion-gated), extra config {args.extra}")
            print(f"{'N':>2} {'decode-only':>11} {'received':>9} {'handled':>8} {'ratio':>6} "
                  f"{'dropped':>8} {'p50 s':>6} {'p95 s':>6} {'hits':>5} {'batch':>6}")
            sustained = 0
            for n in range(1, args.max_streams + 1):
                base = decode_only(url, n, min(10.0, args.seconds / 2))
                r = monitor(url, n, args.seconds, db, work, json.loads(args.extra))
                ok = r["dropped_max"] <= 0.10
                sustained = n if ok else sustained
                print(f"{n:>2} {base:>9.2f}/s {r['received']:>7.2f}/s {r['handled']:>6.2f}/s "
                      f"{r['handled'] / base if base else 0:>6.2f} {100 * r['dropped_max']:>7.1f}% "
                      f"{r['p50']:>6.2f} {r['p95']:>6.2f} {r['hits']:>5} {r['batch']:>6.2f}"
                      f"{'' if ok else '   (over 10 % dropped)'}")
                if not ok and n >= sustained + 2:
                    break  # two settings past the last sustained one
            print(f"sustained without dropping more than 10 % of frames: {sustained} stream(s)")


if __name__ == "__main__":
    main()
