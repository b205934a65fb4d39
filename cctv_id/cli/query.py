"""``cctv-id hits``: read the hit database (table, CSV, JSON)."""

from __future__ import annotations

import json

import click

from ..serialize import jsonable, to_csv
from .process import parse_time

HIT_COLUMNS = ["hit_id", "person", "camera", "track_id", "score", "face_px", "first_seen_s",
               "last_seen_s", "first_seen_at", "last_seen_at", "best_shot_s", "best_shot_bbox",
               "origin", "review_status"]


def render_table(rows: list[dict], columns: list[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@click.command()
@click.option("--person", help="Only hits of this person.")
@click.option("--camera", help="Only hits from this camera.")
@click.option("--since", metavar="ISO", help="Only hits seen at or after this time (UTC).")
@click.option("--until", metavar="ISO", help="Only hits seen at or before this time (UTC).")
@click.option("--min-score", type=float, help="Only hits with at least this similarity.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.pass_obj
def hits(app, person, camera, since, until, min_score, limit, fmt):
    """List identity hits (one per track and person), oldest first."""
    rows = app.repo().query_hits(person=person, camera=camera,
                                 since=parse_time(since, "--since"),
                                 until=parse_time(until, "--until"),
                                 min_score=min_score, limit=limit)
    data = [jsonable(r) for r in rows]
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    elif fmt == "csv":
        click.echo(to_csv(data, HIT_COLUMNS).rstrip("\n"))
    else:
        if not data:
            click.echo("no hits")
            return
        table_rows = [{**r, "best_shot_bbox": ",".join(f"{v:.0f}" for v in r["best_shot_bbox"]),
                       "review_status": r.get("review_status") or "-"} for r in data]
        click.echo(render_table(table_rows, HIT_COLUMNS))


# ``persons`` lives in cli/governance.py with the other watchlist management commands


COMMANDS = [hits]
