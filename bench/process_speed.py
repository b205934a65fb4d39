"""Speed of `process` next to two baselines, measured in one run on the same clips.

For each clip it prints frames/s and real-time factor of:
  decode-only   PyAV decoding of every frame, nothing else (the ceiling);
  pipeline      the archive job exactly as `cctv-id process` runs it (detect -> track ->
                best-K -> align -> batched embed -> match -> decide -> store, SQLite);
  naive         the per-frame loop: the same detector on every frame, then every detected
                face aligned and embedded, then matched (no tracking, no best-K);
and the ratios pipeline/decode-only and pipeline/naive.

Clips: ../shared/data/video/vtest.avi (768x576, 10 fps) when present, and a 1080p clip
generated here (vtest upscaled, or a generated scene, with two CelebA or demo faces).

    python bench/process_speed.py [--seconds 20] [--skip-naive]

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


def decode_only(path: Path, seconds: float) -> tuple[int, float, float]:
    from cctv_id.video.source import open_video

    t0 = time.perf_counter()
    n, last = 0, 0.0
    with open_video(path) as src:
        for frame in src:
            if frame.pts_s >= seconds:
                break
            n, last = n + 1, frame.pts_s
    return n, time.perf_counter() - t0, last + 1.0 / (src.fps or 10.0)


def pipeline(path: Path, seconds: float, workdir: Path, enrol: list[tuple[str, Path]]):
    from cctv_id.cli.context import AppContext
    from cctv_id.cli.process import build_archive_job
    from cctv_id.watchlist import enrol as enrolment

    app = AppContext(db_option=f"sqlite:///{workdir / 'bench.db'}")
    app.reconfigure("archive", {"video": {"progress": False, "max_seconds": seconds},
                                "data_dir": str(workdir / "data")})
    if enrol:
        items = enrolment.prepare(enrol, app.detector(upscale=1.0), app.encoder(), largest=True)
        enrolment.commit(app.repo(), items, app.encoder().name)
    job, _ = build_archive_job(app, camera="bench")
    summary = job.run(path)
    app.close()
    return summary


def naive(path: Path, seconds: float, enrol_vectors: np.ndarray | None):
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
        for frame in src:
            if frame.pts_s >= seconds:
                break
            dets = detector.detect(frame.image, frame.index)
            frames += 1
            if len(dets):
                emb = encoder.embed_faces(frame.image, dets.landmarks)
                faces += len(dets)
                if enrol_vectors is not None and len(enrol_vectors):
                    _ = emb.vectors @ enrol_vectors.T
    return frames, faces, time.perf_counter() - t0


def make_1080p(workdir: Path, seconds: float) -> Path:
    import cv2

    from cctv_id.video.synth import FaceActor, make_1080p_clip

    photos = []
    celeba = SHARED / "faces" / "celeba"
    for pid in ("7201", "7218"):
        files = sorted((celeba / pid).glob("*.jpg")) if celeba.exists() else []
        if files:
            photos.append((pid, cv2.imread(str(files[0]))))
    if not photos:
        from cctv_id.video.demo_scene import demo_assets

        photos = [(p.name, p.probe_image) for p in demo_assets().people[:2]]
    actors = [
        FaceActor(name=n, photo=img, start_s=1.0 + 3 * i, end_s=min(seconds, 6.0 + 3 * i),
                  start_xy=(300 + 200 * i, 500), end_xy=(1500 - 100 * i, 450),
                  start_px=40, end_px=24)
        for i, (n, img) in enumerate(photos)
    ]
    out = workdir / "clip1080p.mp4"
    make_1080p_clip(out, seconds, actors)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="video seconds per clip")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cctv-bench-"))
    clips = []
    if (SHARED / "video" / "vtest.avi").exists():
        clips.append(("vtest 768x576", SHARED / "video" / "vtest.avi"))
    clips.append(("generated 1080p", make_1080p(workdir, args.seconds)))
    enrol = []
    celeba = SHARED / "faces" / "celeba"
    if celeba.exists():
        enrol = [(pid, p) for pid in ("7201", "7218") for p in sorted((celeba / pid).glob("*.jpg"))[1:3]]

    rows = []
    for label, path in clips:
        n, dt, video_s = decode_only(path, args.seconds)
        sub = workdir / label.replace(" ", "_")
        sub.mkdir()
        s = pipeline(path, args.seconds, sub, enrol)
        row = {"clip": label, "frames": n, "video_s": video_s, "decode_fps": n / dt,
               "pipe_fps": s.frames / s.seconds, "pipe_rtf": s.realtime_factor,
               "tracks": s.tracks - s.too_short, "hits": s.hits}
        if not args.skip_naive:
            nf, faces, ndt = naive(path, args.seconds, None)
            row.update(naive_fps=nf / ndt, naive_rtf=video_s / ndt, naive_faces=faces)
        rows.append(row)

    print(f"\nprocess speed, first {args.seconds:.0f} s of each clip (2-core CPU figures are noisy)")
    print(f"{'clip':18s} {'frames':>6s} {'decode fps':>10s} {'pipeline fps':>12s} {'RTF':>5s} "
          f"{'naive fps':>9s} {'naive RTF':>9s} {'pipe/decode':>11s} {'pipe/naive':>10s}")
    for r in rows:
        naive_fps = r.get("naive_fps", float("nan"))
        print(f"{r['clip']:18s} {r['frames']:6d} {r['decode_fps']:10.1f} {r['pipe_fps']:12.2f} "
              f"{r['pipe_rtf']:5.2f} {naive_fps:9.2f} {r.get('naive_rtf', float('nan')):9.2f} "
              f"{r['pipe_fps'] / r['decode_fps']:11.3f} {r['pipe_fps'] / naive_fps:10.2f}")
        print(f"{'':18s} tracks {r['tracks']}, hits {r['hits']}, faces embedded by naive "
              f"{r.get('naive_faces', '-')}")


if __name__ == "__main__":
    main()
