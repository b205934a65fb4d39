"""Speed of `process` against honest baselines, all measured in one run on the same clips.

Per clip it prints frames/s and real-time factor (video seconds per wall second) of:
  decode-only   the reader alone: PyAV decoding of every frame into BGR arrays (the loop
                every per-frame tool runs; the ceiling), and the decoder without that
                conversion (the pipeline converts only the frames its detector searches);
  naive         the per-frame loop: full upscaled detection on every frame, then every
                detected face aligned and embedded (no tracking, no best-K, no gating);
  every-frame   the archive job with motion gating and prefetch off: full detection on
                every frame, tracking, best-K recognition (the accuracy reference);
  archive       the default preset as shipped: motion-gated detection around changes and
                live tracks with a periodic full pass, decode prefetch, recognition in a
                worker thread;
  fast          pipelines/fast.yaml: the same, with detection on every 2nd frame and a
                confirmed, well-predicted track searched on every 2nd of those rounds;
  fast-all      the fast preset with every live track searched on every round (the
                baseline of that per-track stride);
and their ratios to decode-only, naive and every-frame. On the composite clip (known faces)
and the 1080p clip it also prints detection recall per face-size band (on the frames the
detector ran on, and on those rounds where its track did not rest) and the hits, whose persons must not change between modes.

Clips: the street composite (CelebA faces in vtest.avi, ground truth known), vtest.avi
itself, and a generated 1080p clip (60 s by default) with a static background where three
enrolled people cross at different times (faces 30 -> 12 px); recall is printed for it too.

    python bench/process_speed.py [--seconds 15] [--seconds-1080p 60] [--skip-naive]

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


MODES = ("every", "archive", "fast", "fast-all")


def decode_only(path: Path, seconds: float, convert: bool = True) -> dict:
    """The reader's frames (BGR arrays, as the pipeline gets them), or with ``convert``
    False PyAV's decoded frames without the conversion to BGR (the decoder alone)."""
    from cctv_id.video.source import open_video

    t0 = time.perf_counter()
    n = 0
    if convert:
        with open_video(path) as src:
            fps = src.fps or 10.0
            for frame in src:
                if frame.pts_s >= seconds:
                    break
                frame.image  # the reader converts lazily: ask for the pixels, as a loop must
                n += 1
    else:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or 10.0)
            for frame in container.decode(stream):
                if frame.time is not None and frame.time >= seconds:
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
    if mode == "fast-all":
        overrides["detector"] = {"motion": {"track_search_every": 1}}
    app = AppContext(db_option=f"sqlite:///{workdir / 'bench.db'}")
    app.reconfigure("fast" if mode.startswith("fast") else "archive", overrides)
    if enrol:
        items = enrolment.prepare(enrol, app.detector(upscale=1.0), app.encoder(), largest=True)
        enrolment.commit(app.repo(), items, app.encoder().name)
    job, _ = build_archive_job(app, camera="bench")
    detections, rested = {}, {}

    def record(index, dets):
        detections[index] = dets
        rested[index] = getattr(job.detector, "last", {}).get("rested", [])

    job.on_detections = record
    summary = job.run(path)
    stats = getattr(job.detector, "stats", None)
    app.close()
    out = {"frames": summary.frames, "fps": summary.frames / summary.seconds,
           "rtf": summary.realtime_factor, "tracks": summary.tracks - summary.too_short,
           "hits": summary.hits, "people": summary.hit_people, "stats": stats}
    if truth is not None:
        import street_scenario as S

        out["recall"] = S.detection_recall(truth, detections, unsearched=rested)
        out["detections"], out["rested"] = detections, rested
    return out


def sampled_reference(path: Path, seconds: float, truth, every: int = 5) -> dict:
    """Full detection (the whole strategy on the whole frame) on every ``every``-th frame:
    the recall reference for a clip too long for the every-frame mode. {frame: detections}."""
    from cctv_id.config import AppConfig
    from cctv_id.detect.base import build_detector
    from cctv_id.video.source import open_video

    detector = build_detector(AppConfig().detector)
    out = {}
    with open_video(path) as src:
        for frame in src:
            if frame.pts_s >= seconds:
                break
            if frame.index % every == 0:
                out[frame.index] = detector.detect(frame.image, frame.index)
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


def sparse_1080p(workdir: Path, seconds: float):
    """A static 1080p scene (generated background, sensor noise, H.264) where three people
    cross at different times, faces 30 -> 12 px: most frames hold no face. (path, truth)."""
    import cv2

    from cctv_id.video.synth import FaceActor, compose_video, generated_background

    celeba = SHARED / "faces" / "celeba"
    photos = []
    for pid in ("7201", "7218", "7230"):
        files = sorted((celeba / pid).glob("*.jpg")) if celeba.exists() else []
        if files:
            photos.append((pid, cv2.imread(str(files[0]))))
    if not photos:
        from cctv_id.video.demo_scene import demo_assets

        photos = [(p.name, p.probe_image) for p in demo_assets().people[:3]]
    # (start, end) as fractions of the clip; (start px, end px): one large, one mid, one tiny
    plan = [((0.05, 0.30), (30, 20)), ((0.40, 0.60), (24, 16)), ((0.70, 0.90), (16, 12))]
    actors = [
        FaceActor(name=n, photo=img, start_s=a * seconds, end_s=b * seconds,
                  start_xy=(300 + 250 * i, 620 - 40 * i), end_xy=(1550 - 150 * i, 520),
                  start_px=p0, end_px=p1, wobble_px=3.0)
        for i, ((n, img), ((a, b), (p0, p1))) in enumerate(zip(photos, plan))
    ]
    out = workdir / "sparse1080p.mp4"
    truth = compose_video(out, generated_background((1920, 1080)), actors, fps=10.0,
                          duration_s=seconds)
    return out, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="video seconds per 768x576 clip")
    ap.add_argument("--seconds-1080p", type=float, default=60.0,
                    help="length of the sparse 1080p clip (naive and every-frame: its first "
                         "--seconds only, they are 10x slower and steady)")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cctv-bench-"))

    clips = []  # (label, path, truth, enrol, seconds of the fast modes, of the slow ones)
    if (SHARED / "faces" / "celeba").exists() and (SHARED / "video" / "vtest.avi").exists():
        import street_scenario as S

        sc = S.build(workdir / "street", SHARED / "faces" / "celeba",
                     SHARED / "video" / "vtest.avi", seconds=args.seconds)
        enrol = [(p, f) for p, fs in sc.enrol_photos.items() for f in fs]
        clips.append(("composite 768x576", sc.video, sc.truth, enrol, args.seconds, args.seconds))
        clips.append(("vtest 768x576", SHARED / "video" / "vtest.avi", None, [], args.seconds,
                      args.seconds))
    video, truth = sparse_1080p(workdir, args.seconds_1080p)
    enrol = [(n, f) for n in ("7201", "7218", "7230")
             for f in sorted((SHARED / "faces" / "celeba" / n).glob("*.jpg"))[1:3]]
    clips.append(("sparse 1080p", video, truth, enrol, args.seconds_1080p,
                  min(args.seconds, args.seconds_1080p)))

    rows = []
    truth_of = {c[0]: c[2] for c in clips}
    for label, path, truth, enrol, secs, slow_secs in clips:
        sub = workdir / label.replace(" ", "_")
        row = {"clip": label, "seconds": secs, "decode": decode_only(path, secs),
               "decode_raw": decode_only(path, secs, convert=False)}
        # the quick modes right after the baseline: the slow ones leave the process with large
        # buffers (every-frame: 150 complete 4K passes on 1080p) that slowed later runs by 15-25 %
        for mode in ("fast", "fast-all", "archive", "every"):
            (sub / mode).mkdir(parents=True)
            row[mode] = archive(path, slow_secs if mode == "every" else secs, sub / mode, enrol,
                                mode, truth=truth)
        if not args.skip_naive:
            row["naive"] = naive(path, slow_secs)
        if truth is not None and slow_secs < secs:
            row["reference"] = sampled_reference(path, secs, truth)
        rows.append(row)
        print(f"done: {label}", file=sys.stderr)

    nan = float("nan")
    print(f"\nprocess speed (2 shared cores: noisy); naive and every-frame on the first "
          f"{args.seconds:.0f} s of each clip")
    print(f"{'clip':18s} {'mode':12s} {'fps':>7s} {'RTF':>6s}  notes")
    for r in rows:
        for mode in ("decode", "decode_raw", "naive", *MODES):
            m = r.get(mode)
            if m is None:
                continue
            notes = f"{m['frames']} frames"
            if mode in MODES:
                notes += f", tracks {m['tracks']}, hits {m['hits']} {sorted(m['people'])}"
                if m.get("stats"):
                    st = m["stats"]
                    notes += (f", full passes {st.get('full_passes')}, roi passes "
                              f"{st.get('roi_passes')} ({st.get('native_crops')} native-only "
                              f"crops), no-model frames {st.get('empty_frames')}, tracks "
                              f"rested {st.get('rested_tracks')}")
            if mode == "naive":
                notes += f", faces embedded {m['faces']}"
            name = {"decode": "decode-only", "decode_raw": "decode, no BGR", "every": "every-frame",
                    "archive": "archive", "fast": "fast preset",
                    "fast-all": "fast, no rest"}.get(mode, mode)
            print(f"{r['clip']:18s} {name:14s} {m['fps']:7.2f} {m['rtf']:6.2f}  {notes}")
        for mode in MODES[1:]:
            f = r[mode]["fps"]
            print(f"{'':18s} {mode}: /decode-only {f / r['decode']['fps']:.3f} (/decode without "
                  f"BGR {f / r['decode_raw']['fps']:.3f}), /naive "
                  f"{f / r.get('naive', {}).get('fps', nan):.2f}, /every-frame "
                  f"{f / r['every']['fps']:.2f}")
        if "reference" in r:
            import street_scenario as S

            ref = r["reference"]
            rec = {"full detection": S.detection_recall(truth_of[r["clip"]], ref)}
            for mode in MODES[1:]:
                dets = r[mode]["detections"]
                rec[mode] = S.detection_recall(truth_of[r["clip"]],
                                               {i: dets[i] for i in ref if i in dets},
                                               unsearched=r[mode]["rested"])
            print(f"{'':18s} recall on every 5th frame (those the mode detected on):")
            for band in rec["archive"]:
                cells = [f"{k} {v[band][0]}/{v[band][1]} ({v[band][0] / max(v[band][1], 1):.3f})"
                         for k, v in rec.items()]
                print(f"{'':18s}   {band:>6s} px: " + "  ".join(cells))
        elif "recall" in r["fast"]:
            for band in r["fast"]["recall"]:
                cells = []
                for mode in MODES:
                    hit, tot = r[mode]["recall"][band]
                    cells.append(f"{mode} {hit}/{tot} ({hit / max(tot, 1):.3f})")
                print(f"{'':18s} recall {band:>6s} px (frames the detector ran on): "
                      + "  ".join(cells))


if __name__ == "__main__":
    main()
