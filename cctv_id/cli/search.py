"""``cctv-id search --photo``, ``tracks``, ``timeline``: find people in everything stored.

Thin wrappers: the search is :func:`cctv_id.watchlist.search.search_by_photo`, the listings
are the repository's ``query_tracks`` and ``timeline``; this module parses options and
formats rows (table, JSON, CSV).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..serialize import jsonable, to_csv
from .process import parse_time
from .query import render_table

SEARCH_COLUMNS = ["rank", "score", "person", "camera", "track", "when", "from_s", "to_s",
                  "face_px", "status"]
TRACK_COLUMNS = ["track", "camera", "when", "from_s", "to_s", "person", "status", "face_px",
                 "n_det", "run"]
TIMELINE_COLUMNS = ["when", "camera", "score", "origin", "review", "face_px", "track"]


def _cells(row: dict) -> dict:
    """Short table cells shared by the three listings."""
    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    return {**row, "track": row.get("track_id"), "when": row.get("first_seen_at") or "",
            "from_s": num(row.get("first_seen_s"), ".1f"), "to_s": num(row.get("last_seen_s"), ".1f"),
            "face_px": num(row.get("max_face_px", row.get("face_px")), ".0f"),
            "score": num(row.get("score"), ".4f"), "person": row.get("person") or "-",
            "n_det": row.get("n_detections"), "run": row.get("run_id"),
            "origin": row.get("origin"), "review": row.get("review_status") or "-"}


def _emit(rows: list[dict], fmt: str, columns: list[str], empty: str) -> None:
    rows = [jsonable(r) for r in rows]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(rows, columns).rstrip("\n"))
    elif not rows:
        click.echo(empty)
    else:
        click.echo(render_table([_cells(r) for r in rows], columns))


_since = click.option("--since", metavar="ISO", help="Only what was seen at or after this time (UTC).")
_until = click.option("--until", metavar="ISO", help="Only what was seen at or before this time (UTC).")


@click.command()
@click.option("--photo", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Photo showing the one face to look for.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many tracks to list.")
@_since
@_until
@click.option("--camera", help="Only tracks from this camera.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_obj
def search(app, photo, top, since, until, camera, fmt):
    """Rank stored tracks, known and unknown, by similarity to the face in PHOTO."""
    from ..watchlist.search import search_by_photo

    since_t, until_t = parse_time(since, "--since"), parse_time(until, "--until")
    encoder = app.encoder()
    results, info = search_by_photo(app.repo(), app.detector(upscale=1.0, tile_size=0), encoder,
                                    app.data_dir(), photo, top=top, since=since_t, until=until_t,
                                    camera=camera, operator=app.operator)
    skipped = info["skipped_other_models"]
    if skipped:
        detail = ", ".join(f"{m}: {n}" for m, n in sorted(skipped.items()))
        click.echo(f"note: {sum(skipped.values())} track(s) embedded by other recognisers were "
                   f"not searched ({detail}); `cctv-id reembed` re-embeds them with "
                   f"{info['model']}", err=True)
    _emit(results, fmt, SEARCH_COLUMNS,
          f"no tracks to search ({info['searched']} candidate(s) of {info['model']})")


@click.command()
@click.option("--unknown", is_flag=True, help="Only tracks that name nobody (no unrejected hit).")
@click.option("--camera", help="Only tracks from this camera.")
@_since
@_until
@click.option("--person", help="Only tracks with a (not rejected) hit of this person.")
@click.option("--run", "run_id", type=int, metavar="ID", help="Only tracks of this run.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.pass_obj
def tracks(app, unknown, camera, since, until, person, run_id, limit, fmt):
    """List stored tracks in time order (known and unknown faces)."""

    rows = app.repo().query_tracks(camera=camera, since=parse_time(since, "--since"),
                                   until=parse_time(until, "--until"), unknown=unknown,
                                   person=person, run_id=run_id, limit=limit)
    _emit(rows, fmt, TRACK_COLUMNS, "no tracks")


@click.command()
@click.argument("person")
@_since
@_until
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_obj
def timeline(app, person, since, until, fmt):
    """Where and when PERSON was seen, in time order across cameras (rejected hits left out)."""

    rows = app.repo().timeline(person, since=parse_time(since, "--since"),
                               until=parse_time(until, "--until"))
    _emit(rows, fmt, TIMELINE_COLUMNS, f"no sightings of {person}")


COMMANDS = [search, tracks, timeline]
