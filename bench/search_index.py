"""Track search index: full rebuild vs incremental sync vs no-op sync, and search latency
against numpy brute force, on N synthetic unit vectors stored in SQLite through the repository.

Stores N tracks (default 100k, 128-d) in a fresh SQLite database, then times:
- a full rebuild (empty cache: every embedding read from the database and indexed),
- reopening from the cache file after ``--new`` (default 1k) more tracks were stored
  (incremental: only those fetched), and a no-op open (nothing new),
- a search (top 10) over all tracks, and one restricted to 10 % of them (as a camera/time
  filter does: a small share is scored directly from the index's vectors),
  against the same ranking done with numpy (matrix-vector product + argpartition).
Prints figures and ratios; asserts nothing.

    python bench/search_index.py [--n 100000] [--dim 128] [--new 1000] [--queries 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cctv_id.store import Repository, TrackRecord  # noqa: E402
from cctv_id.watchlist.track_index import TrackIndex  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
MODEL = "bench-model"


def unit(rng, n, d):
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def store(repo, run, cam, first_key, vectors, batch=5000):
    for i in range(0, len(vectors), batch):
        recs = [TrackRecord(track_key=first_key + i + j, status="unknown", first_frame=0,
                            last_frame=9, first_pts_s=0.0, last_pts_s=1.0,
                            first_seen_at=T0 + timedelta(seconds=i + j),
                            last_seen_at=T0 + timedelta(seconds=i + j + 1), n_detections=10,
                            max_face_px=20.0, quality=0.5, model=MODEL, embedding=v)
                for j, v in enumerate(vectors[i:i + batch])]
        repo.save_track_results(run, cam, recs)


def timed(fn, repeat=1):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository(f"sqlite:///{tmp}/bench.db")
        cam = repo.get_or_create_camera("bench")
        run = repo.start_run(repo.get_or_create_source("/bench.mp4", "c" * 64, 1), cam, {}, {}, "x", T0)
        base = unit(rng, args.n, args.dim)
        _, t_store = timed(lambda: store(repo, run, cam, 0, base))
        cache = Path(tmp) / "index"

        ti, t_rebuild = timed(lambda: TrackIndex.open(repo, MODEL, cache))
        assert ti.last_sync["mode"] == "rebuild"
        size_mb = (cache / f"tracks-{MODEL}.faiss").stat().st_size / 1e6
        _, t_fetch_all = timed(lambda: repo.track_embeddings(MODEL, 0))

        new = unit(rng, args.new, args.dim)
        store(repo, run, cam, args.n, new)
        inc, t_incr = timed(lambda: TrackIndex.open(repo, MODEL, cache))
        assert inc.last_sync["mode"] == "incremental" and inc.last_sync["fetched"] == args.new
        noop, t_noop = timed(lambda: TrackIndex.open(repo, MODEL, cache), repeat=3)
        assert noop.last_sync["mode"] == "noop"
        _, t_sync_mem = timed(lambda: noop.sync(repo), repeat=5)  # in memory: one state read

        total = args.n + args.new
        matrix = np.concatenate([base, new])
        ids = np.array(sorted(noop.ids().tolist()), np.int64)  # track ids, in insert order
        queries = unit(rng, args.queries, args.dim)
        allowed = ids[rng.choice(total, total // 10, replace=False)]

        def faiss_all():
            return [noop.search(q, 10) for q in queries]

        def numpy_all():
            out = []
            for q in queries:
                s = matrix @ q
                top = np.argpartition(-s, 10)[:10]
                out.append(ids[top[np.argsort(-s[top])]])
            return out

        pos = np.searchsorted(ids, allowed)

        def faiss_sub():
            return [noop.search(q, 10, allowed_ids=allowed) for q in queries]

        def numpy_sub():
            out = []
            for q in queries:
                s = matrix[pos] @ q
                top = np.argpartition(-s, 10)[:10]
                out.append(allowed[top[np.argsort(-s[top])]])
            return out

        (fa, t_fa), (na, t_na) = timed(faiss_all, 3), timed(numpy_all, 3)
        (fs, t_fs), (ns, t_ns) = timed(faiss_sub, 3), timed(numpy_sub, 3)
        agree = np.mean([[t for t, _ in f] == list(n) for f, n in zip(fa, na)])
        agree_sub = np.mean([[t for t, _ in f] == list(n) for f, n in zip(fs, ns)])
        repo.close()

    q = args.queries
    print(f"tracks: {args.n} x {args.dim}-d in SQLite (+{args.new} new); cache file {size_mb:.1f} MB")
    print(f"store {args.n} tracks through the repository: {t_store:.1f} s "
          f"({args.n / t_store:.0f} tracks/s)")
    print(f"full rebuild (empty cache):         {t_rebuild * 1e3:8.1f} ms  "
          f"(of which reading embeddings from the DB ~{t_fetch_all * 1e3:.0f} ms)")
    print(f"incremental open (+{args.new} tracks):    {t_incr * 1e3:8.1f} ms  "
          f"-> {t_rebuild / t_incr:.1f}x faster than a rebuild")
    print(f"no-op open (cache file, nothing new): {t_noop * 1e3:8.1f} ms  "
          f"-> {t_rebuild / t_noop:.1f}x faster than a rebuild")
    print(f"no-op sync in memory:               {t_sync_mem * 1e3:8.2f} ms")
    print(f"search top-10 over {total}:  faiss {t_fa / q * 1e3:.2f} ms/query, numpy "
          f"{t_na / q * 1e3:.2f} ms/query (faiss/numpy time {t_fa / t_na:.2f}); same top-10: "
          f"{agree:.0%}")
    print(f"search top-10 over 10 % ({len(allowed)} ids, filtered): faiss {t_fs / q * 1e3:.2f} "
          f"ms/query, numpy {t_ns / q * 1e3:.2f} ms/query (ratio {t_fs / t_ns:.2f}); same top-10: "
          f"{agree_sub:.0%}")


if __name__ == "__main__":
    main()
