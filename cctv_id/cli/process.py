"""``cctv-id process``: find watchlist people in a recorded video file."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from ..errors import InputError, RunInterrupted, VideoError


def parse_time(value: str | None, what: str = "time") -> datetime | None:
    """ISO 8601 date or date-time; naive values are taken as UTC."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"invalid {what} '{value}': use ISO 8601, e.g. 2026-05-01T08:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def build_archive_job(app, camera: str):
    from ..pipeline.archive import ArchiveJob
    from ..watchlist.matcher import WatchlistMatcher

    cfg = app.config()
    repo = app.repo()
    encoder = app.encoder()
    matcher = WatchlistMatcher.load(repo, encoder.name, cache_dir=app.data_dir() / "index")
    return ArchiveJob(cfg, repo, app.detector(camera), encoder, matcher, app.bands(encoder),
                      app.data_dir(), camera=camera), matcher


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--camera", default="default", show_default=True, help="Camera name for the hits.")
@click.option("--start-time", metavar="ISO",
              help="Wall-clock time (UTC unless an offset is given) of the first frame; "
                   "default: the file's creation_time metadata, if any.")
@click.option("--preset", default=None,
              help="Pipeline preset from pipelines/ (archive, fast) or a YAML path "
                   "[default: the config file's preset, else archive].")
@click.option("--stride", type=click.IntRange(min=1), help="Hand every Nth decoded frame on.")
@click.option("--detect-every", type=click.IntRange(min=1),
              help="Run the detector on every Nth handed frame; the tracker carries faces between.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True),
              help="Process only the first N seconds of the video.")
@click.option("--restart", is_flag=True,
              help="Process again from the start, replacing the results of an earlier run "
                   "of the same file and settings (default: resume it / skip it if done).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def process(app, video: Path, camera: str, start_time: str | None, preset: str,
            stride: int | None, detect_every: int | None, max_seconds: float | None,
            restart: bool, no_progress: bool):
    """Detect, track and recognise faces in VIDEO and store track-level hits.

    Runs are checkpointed: after a crash or Ctrl-C, the same command resumes where the run
    stopped; a file already processed with the same settings is not processed again.
    Exit codes: 0 done, 3 bad video, 130/143 stopped by SIGINT/SIGTERM (resumable).
    """
    video_over = {}
    if stride:
        video_over["stride"] = stride
    if detect_every:
        video_over["detect_every"] = detect_every
    if max_seconds:
        video_over["max_seconds"] = max_seconds
    if no_progress:
        video_over["progress"] = False
    app.reconfigure(preset, {"video": video_over} if video_over else None)
    start = parse_time(start_time, "--start-time")
    if not video.exists():
        raise InputError(f"no such file: {video}")
    from ..video.source import video_info

    video_info(video)  # a file that is not a readable video fails here, before any write
    job, matcher = build_archive_job(app, camera)
    if matcher.empty:
        click.echo("warning: the watchlist is empty; every track will be stored as unknown",
                   err=True)
    from .signals import StopSignals

    stopper = StopSignals(job.request_stop)
    with stopper.installed():
        summary = job.run(video, start_time=start, restart=restart)
    if summary.status == "already_done":
        click.echo(f"{video} was already processed with these settings in run {summary.run_id}; "
                   "nothing to do (use --restart to process it again)")
        return
    if summary.resumed_from_frame is not None:
        click.echo(f"resumed run {summary.run_id} after frame {summary.resumed_from_frame}")
    report_run(summary, stopper.signum)


def report_run(summary, signum: int | None = None) -> None:
    """Print what a run did; raise the matching error if it did not complete."""
    click.echo(
        f"run {summary.run_id}: {summary.frames} frames in {summary.seconds:.1f} s "
        f"({summary.realtime_factor:.2f}x real time), {summary.tracks - summary.too_short} tracks "
        f"({summary.hits} hits, {summary.unknown} unknown, {summary.too_small} too small)"
    )
    for person in sorted(set(summary.hit_people)):
        click.echo(f"  hit: {person} x{summary.hit_people.count(person)}")
    if summary.pts_fixes:
        click.echo(f"warning: {summary.pts_fixes} missing or out-of-order timestamps were "
                   "repaired (damaged file?)", err=True)
    if summary.decode_errors:
        click.echo(f"warning: {summary.decode_errors} undecodable packets were skipped", err=True)
    if summary.incomplete:
        click.echo("warning: the file ended early (truncated?); what it held was processed",
                   err=True)
    if summary.status == "interrupted":
        raise RunInterrupted(f"run {summary.run_id} interrupted ({summary.error}); "
                             "run the same command again to resume", signum)
    if summary.status == "failed":
        raise VideoError(f"{summary.error} (run {summary.run_id} marked failed; "
                         f"{summary.hits} hit(s) found before the failure were kept)")


COMMANDS = [process]
