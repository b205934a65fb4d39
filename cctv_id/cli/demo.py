"""``cctv-id demo``: the whole job on data shipped inside installed packages, offline.

Builds a short street-like clip in which the people of insightface's sample group photo
walk past as small faces (using altered copies of their photos), enrols all but one of
them from the original photos (the one least like the others stays a stranger), processes the clip and prints the hits. Uses its own
SQLite database in the output folder unless ``--db`` is given.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


def _most_distinct(people, detector, encoder):
    """The person least similar to all others under the recogniser: left off the watchlist
    so that the demo shows an unknown face without inviting a look-alike false match."""
    import numpy as np

    vectors = []
    for person in people:
        dets = detector.detect(person.enrol_image)
        i = int(np.argmax(dets.heights))
        vectors.append(encoder.embed_faces(person.enrol_image, dets.landmarks[i:i + 1]).vectors[0])
    sims = np.array(vectors) @ np.array(vectors).T
    np.fill_diagonal(sims, -1.0)
    return people[int(np.argmin(sims.max(axis=1)))]


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the clip, photos, database and crops (default: a new temp folder).")
@click.option("--seconds", type=click.FloatRange(2, 120), default=12.0, show_default=True,
              help="Length of the generated clip.")
@click.pass_obj
def demo(app, out_dir: Path | None, seconds: float):
    """Build a demo clip, enrol its people, process it and show the hits."""
    import cv2

    from ..video.demo_scene import demo_assets, make_demo_clip
    from ..watchlist import enrol
    from .process import build_archive_job
    from ..serialize import jsonable
    from .query import render_table

    out_dir = out_dir or Path(tempfile.mkdtemp(prefix="cctv-id-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if not app.db_option:
        app.db_option = f"sqlite:///{(out_dir / 'demo.db').resolve()}"
    app.reconfigure("archive", {"video": {"progress": False}})

    photo_detector = app.detector(upscale=1.0, tile_size=0)
    click.echo("building demo assets from insightface's sample photos ...")
    assets = demo_assets(detector=lambda img: photo_detector.detect(img))
    people = list(assets.people)
    encoder = app.encoder()
    stranger = _most_distinct(people, photo_detector, encoder)
    enrolled = [p for p in people if p is not stranger]
    photos = []
    for person in enrolled:
        path = out_dir / "photos" / person.name / "enrol.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), person.enrol_image)
        photos.append((person.name, path))
    clip = out_dir / "demo.mp4"
    make_demo_clip(clip, assets, seconds=seconds)
    click.echo(f"clip: {clip} ({seconds:.0f} s; {len(people)} people walk past, "
               f"{stranger.name} is not enrolled)")

    items = enrol.prepare(photos, photo_detector, encoder)
    enrol.commit(app.repo(), items, encoder.name, data_dir=app.data_dir(), operator=app.operator)
    click.echo(f"enrolled: {', '.join(p.name for p in enrolled)}")

    job, _ = build_archive_job(app, camera="demo")
    summary = job.run(clip)
    if summary.status != "completed":
        from .process import report_run

        report_run(summary)
    click.echo(f"processed {summary.frames} frames in {summary.seconds:.1f} s: "
               f"{summary.tracks - summary.too_short} tracks, {summary.hits} hits, "
               f"{summary.unknown} unknown")
    rows = [jsonable(r) for r in app.repo().query_hits()]
    if rows:
        cols = ["person", "track_id", "score", "face_px", "first_seen_s", "last_seen_s"]
        click.echo(render_table(rows, cols))
    else:
        click.echo("no hits")
    click.echo(f"database: {app.db_url()}  (try: cctv-id --db {app.db_url()} hits)")


COMMANDS = [demo]
