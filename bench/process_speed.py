"""Speed of `process` against honest baselines, all measured in one run on the same clips.

Per clip it prints frames/s and real-time factor (video seconds per wall second) of:
  decode-only   PyAV decoding of every frame and nothing else (the ceiling);
  naive         the per-frame loop: full upscaled detection on every frame, then every
                detected face aligned and embedded (no tracking, no best-K, no gating);
  every-frame   the archive job with motion gating and prefetch off: full detection on
                every frame, tracking, best-K recognition (the accuracy reference);
  archive       the default preset as shipped: motion-gated detection around changes and
                live tracks with a periodic full pass, decode prefetch, recognition in a
                worker thread;
  fast          pipelines/fast.yaml: the same, with detection on every 2nd frame;
and their ratios to decode-only, naive and every-frame. On the composite clip (known faces)
it also prints detection recall per face-size band (on the frames the detector ran on) and
the hits, whose persons must not change between modes.

Clips: the street composite (CelebA faces in vtest.avi, ground truth known), vtest.avi
itself, and a generated 1080p clip with a static background and two sparse faces.

    python bench/process_speed.py [--seconds 15] [--skip-naive]

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "helpers"))


def decode_only(path: Path, seconds: float) -> dict:
    from cctv_id.video.source import open_video

    t0 = time.perf_counter()
    n = 0
    with open_video(path) as src:
        fps = src.fps or 10.0
        for frame in src:
            if frame.pts_s >= seconds:
                break
            n += 1
    dt = time.perf_counter() - t0
    return {"frames": n, "fps": n / dt, "rtf": (n / fps) / dt}


def archive(path: Path, seconds: float, workdir: Path, enrol, mode: str, truth=None) -> dict:
    from cctv_id.cli.context import AppContext
    from cctv_id.cli.process import build_archive_job
    from cctv_id.watchlist import enrol as enrolment

    overrides = {"video": {"progress": False, "max_seconds": seconds,
                           "prefetch": mode != "every"},
                 "data_dir": str(workdir / "data")}
    if mode == "every":
        overrides["detector"] = {"motion": {"enabled": False}}
    app = AppContext(db_option=f"sqlite:///{workdir / 'bench.db'}")
    app.reconfigure("fast" if mode == "fast" else "archive", overrides)
    if enrol:
        items = enrolment.prepare(enrol, app.detector(upscale=1.0), app.encoder(), largest=True)
        enrolment.commit(app.repo(), items, app.encoder().name)
    job, _ = build_archive_job(app, camera="bench")
    detections = {}
    job.on_detections = lambda i, d: detections.__setitem__(i, d)
    summary = job.run(path)
    stats = getattr(job.detector, "stats", None)
    app.close()
    out = {"frames": summary.frames, "fps": summary.frames / summary.seconds,
           "rtf": summary.realtime_factor, "tracks": summary.tracks - summary.too_short,
           "hits": summary.hits, "people": summary.hit_people, "stats": stats}
    if truth is not None:
        import street_scenario as S

        out["recall"] = S.detection_recall(truth, detections)
    return out


def naive(path: Path, seconds: float) -> dict:
    from cctv_id.config import AppConfig
    from cctv_id.detect.base import build_detector
    from cctv_id.recognize.base import build_encoder
    from cctv_id.video.source import open_video

    cfg = AppConfig()
    detector = build_detector(cfg.detector)
    encoder = build_encoder(cfg.recognizer)
    t0 = time.perf_counter()
    frames = faces = 0
    with open_video(path) as src:
        fps = src.fps or 10.0
        for frame in src:
            if frame.pts_s >= seconds:
                break
            dets = detector.detect(frame.image, frame.index)
            frames += 1
            if len(dets):
                encoder.embed_faces(frame.image, dets.landmarks)
                faces += len(dets)
    dt = time.perf_counter() - t0
    return {"frames": frames, "fps": frames / dt, "rtf": (frames / fps) / dt, "faces": faces}


def sparse_1080p(workdir: Path, seconds: float) -> Path:
    import cv2

    from cctv_id.video.synth import FaceActor, compose_video, generated_background

    celeba = SHARED / "faces" / "celeba"
    photos = []
    for pid in ("7201", "7218"):
        files = sorted((celeba / pid).glob("*.jpg")) if celeba.exists() else []
        if files:
            photos.append((pid, cv2.imread(str(files[0]))))
    if not photos:
        from cctv_id.video.demo_scene import demo_assets

        photos = [(p.name, p.probe_image) for p in demo_assets().people[:2]]
    actors = [
        FaceActor(name=n, photo=img, start_s=1.0 + 3 * i, end_s=min(seconds, 6.0 + 3 * i),
                  start_xy=(300 + 200 * i, 600), end_xy=(1500 - 100 * i, 520),
                  start_px=30, end_px=20)
        for i, (n, img) in enumerate(photos)
    ]
    out = workdir / "sparse1080p.mp4"
    compose_video(out, generated_background((1920, 1080)), actors, fps=10.0, duration_s=seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="video seconds per clip")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cctv-bench-"))

    clips = []  # (label, path, truth, enrol)
    if (SHARED / "faces" / "celeba").exists() and (SHARED / "video" / "vtest.avi").exists():
        import street_scenario as S

        sc = S.build(workdir / "street", SHARED / "faces" / "celeba",
                     SHARED / "video" / "vtest.avi", seconds=args.seconds)
        enrol = [(p, f) for p, fs in sc.enrol_photos.items() for f in fs]
        clips.append(("composite 768x576", sc.video, sc.truth, enrol))
        clips.append(("vtest 768x576", SHARED / "video" / "vtest.avi", None, []))
    clips.append(("sparse 1080p", sparse_1080p(workdir, args.seconds), None, []))

    rows = []
    for label, path, truth, enrol in clips:
        sub = workdir / label.replace(" ", "_")
        row = {"clip": label, "decode": decode_only(path, args.seconds)}
        for mode in ("every", "archive", "fast"):
            (sub / mode).mkdir(parents=True)
            row[mode] = archive(path, args.seconds, sub / mode, enrol, mode, truth=truth)
        if not args.skip_naive:
            row["naive"] = naive(path, args.seconds)
        rows.append(row)
        print(f"done: {label}", file=sys.stderr)

    nan = float("nan")
    print(f"\nprocess speed, first {args.seconds:.0f} s of each clip (2 shared cores: noisy)")
    print(f"{'clip':18s} {'mode':12s} {'fps':>7s} {'RTF':>6s}  notes")
    for r in rows:
        for mode in ("decode", "naive", "every", "archive", "fast"):
            m = r.get(mode)
            if m is None:
                continue
            notes = ""
            if mode in ("every", "archive", "fast"):
                notes = f"tracks {m['tracks']}, hits {m['hits']} {sorted(m['people'])}"
                if m.get("stats"):
                    st = m["stats"]
                    notes += (f", full passes {st.get('full_passes')}, roi passes "
                              f"{st.get('roi_passes')}, no-model frames {st.get('empty_frames')}")
            if mode == "naive":
                notes = f"faces embedded {m['faces']}"
            name = {"decode": "decode-only", "every": "every-frame", "archive": "archive",
                    "fast": "fast preset"}.get(mode, mode)
            print(f"{r['clip']:18s} {name:12s} {m['fps']:7.2f} {m['rtf']:6.2f}  {notes}")
        for mode in ("archive", "fast"):
            f = r[mode]["fps"]
            print(f"{'':18s} {mode}: /decode-only {f / r['decode']['fps']:.3f}, /naive "
                  f"{f / r.get('naive', {}).get('fps', nan):.2f}, /every-frame "
                  f"{f / r['every']['fps']:.2f}")
        if "recall" in r["fast"]:
            for band in r["fast"]["recall"]:
                cells = []
                for mode in ("every", "archive", "fast"):
                    hit, tot = r[mode]["recall"][band]
                    cells.append(f"{mode} {hit}/{tot} ({hit / max(tot, 1):.3f})")
                print(f"{'':18s} recall {band:>6s} px (frames the detector ran on): "
                      + "  ".join(cells))


if __name__ == "__main__":
    main()
