"""``cctv-id export-case`` and ``cctv-id verify-case``: evidence case files.

Thin wrappers over :func:`cctv_id.case.export_case` and :func:`cctv_id.case.verify_case`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .process import parse_time


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@click.command("export-case")
@click.option("--person", required=True, help="Whose hits to export (a watchlist name).")
@click.option("--since", metavar="ISO", help="Only hits seen at or after this time (UTC).")
@click.option("--until", metavar="ISO", help="Only hits seen at or before this time (UTC).")
@click.option("--camera", help="Only hits from this camera.")
@click.option("--clip-margin", "clip_margin", type=click.FloatRange(min=0), default=2.0,
              show_default=True, metavar="S",
              help="Seconds of video kept before the first and after the last sighting.")
@click.option("--max-clip-s", "max_clip_s", type=click.FloatRange(min=0, min_open=True),
              default=20.0, show_default=True, metavar="S",
              help="Longest clip; longer ones are centred on the best shot.")
@click.option("--no-clips", is_flag=True, help="No video clips (crops, frames and tables only).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.argument("out", type=click.Path(path_type=Path))
@click.pass_obj
def export_case_cmd(app, person, since, until, camera, clip_margin, max_clip_s, no_clips,
                    no_progress, fmt, out):
    """Export a person's hits as a verifiable case to OUT (a new folder, or a zip when OUT
    ends with .zip): hits.csv/json, crops, context frames, a clip per hit with the face
    boxed, and a manifest of sha256s (check it later with verify-case)."""
    from ..case import export_case

    since_t, until_t = parse_time(since, "--since"), parse_time(until, "--until")
    result = export_case(app.repo(), app.data_dir(), out, person=person, operator=app.operator,
                         since=since_t, until=until_t, camera=camera,
                         clip_margin_s=clip_margin, max_clip_s=max_clip_s, clips=not no_clips,
                         progress=not no_progress)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(f"exported {result.hits} hit(s) of {result.person} to {result.out} "
               f"({result.kind}): {result.clips} clip(s), {result.files} files + manifest, "
               f"{_size(result.bytes)} in {result.seconds:.1f} s")
    for skipped in result.clips_skipped:
        click.echo(f"no clip for hit {skipped['hit_id']}: {skipped['reason']}")
    for missing in result.missing_evidence:
        click.echo(f"missing evidence: {missing}")
    click.echo(f"manifest sha256: {result.manifest_sha256}")


@click.command("verify-case")
@click.argument("case", metavar="DIR_OR_ZIP", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def verify_case_cmd(ctx, case, fmt):
    """Check an exported case against its manifest: every file's sha256 and size; files
    missing, changed or not listed. Exit 0 when intact, 1 otherwise."""
    from ..case import verify_case

    report = verify_case(case)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.intact:
        click.echo(f"intact: {report.checked} files match the manifest "
                   f"(exported {report.created_at} by cctv-id {report.tool_version})")
        click.echo(f"manifest sha256: {report.manifest_sha256}")
    else:
        click.echo(f"NOT intact: {case}")
        for what in ("missing", "changed", "unlisted", "invalid"):
            for rel in getattr(report, what):
                click.echo(f"  {what}: {rel}")
        click.echo(f"{report.checked} other files match; manifest sha256: {report.manifest_sha256}")
    if not report.intact:
        ctx.exit(1)


COMMANDS = [export_case_cmd, verify_case_cmd]
