"""``cctv-id review`` (confirm / reject hits, name unknown tracks, merge tracks, list the
decisions) and ``cctv-id retro-match`` (look for enrolled people among stored unknown tracks).

Thin wrappers: the work is done by the repository's review methods
(:mod:`cctv_id.store.reviews`) and :func:`cctv_id.watchlist.retro.retro_match`; decisions
are recorded under ``--operator`` (default: the OS user) and audited.
"""

from __future__ import annotations


import click

from ..serialize import iso as _iso, to_json as _json
from .query import render_table

_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
                       show_default=True)


def _say(fmt: str, result: dict, line: str) -> None:
    click.echo(_json(result) if fmt == "json" else line)


@click.group()
def review() -> None:
    """Reviewers' decisions: confirm or reject hits, name tracks, merge tracks.

    Decisions are kept by what was seen (source, camera, frames), so they are applied again
    when the footage is processed again.
    """


@review.command("confirm")
@click.argument("hit_id", type=int)
@click.option("--note", help="Why (kept with the decision).")
@_FORMAT
@click.pass_obj
def confirm(app, hit_id, note, fmt):
    """Confirm hit HIT_ID (see `cctv-id hits`)."""
    r = app.repo().confirm_hit(hit_id, app.operator, note=note)
    _say(fmt, r, f"hit {r['hit_id']} ({r['person']}, track {r['track_id']}) confirmed by {r['operator']}")


@review.command("reject")
@click.argument("hit_id", type=int)
@click.option("--note", help="Why (kept with the decision).")
@_FORMAT
@click.pass_obj
def reject(app, hit_id, note, fmt):
    """Reject hit HIT_ID: it stays listed as rejected; views and search leave it out."""
    r = app.repo().reject_hit(hit_id, app.operator, note=note)
    _say(fmt, r, f"hit {r['hit_id']} ({r['person']}, track {r['track_id']}) rejected by "
                 f"{r['operator']}; track is now {r['track_status']}")


@review.command("name")
@click.argument("track_id", type=int)
@click.argument("person")
@click.option("--create", is_flag=True,
              help="Add PERSON if they do not exist yet (not enrolled: no photo, watchlist unchanged).")
@click.option("--note", help="Why (kept with the decision).")
@_FORMAT
@click.pass_obj
def name(app, track_id, person, create, note, fmt):
    """Name track TRACK_ID as PERSON (a confirmed manual hit)."""
    r = app.repo().name_track(track_id, person, app.operator, note=note, create=create)
    _say(fmt, r, f"track {r['track_id']} named {r['person']} (hit {r['hit_id']}) by {r['operator']}")


@review.command("merge")
@click.argument("track_ids", type=int, nargs=-1, required=True)
@click.option("--note", help="Why (kept with the decision).")
@_FORMAT
@click.pass_obj
def merge(app, track_ids, note, fmt):
    """Merge tracks of one person (at least two TRACK_IDS) into one cluster."""
    r = app.repo().merge_tracks(list(track_ids), app.operator, note=note)
    named = f"; {r['person']} on {len(r['new_hit_ids'])} more track(s)" if r["person"] else ""
    _say(fmt, r, f"tracks {', '.join(map(str, r['track_ids']))} merged as cluster "
                 f"{r['cluster_id']}{named}")


REVIEW_COLUMNS = ["review_id", "kind", "created_at", "operator", "track_id", "camera",
                  "first_frame", "last_frame", "person", "group_key", "note"]


@review.command("list")
@click.option("--kind", type=click.Choice(["confirm", "reject", "name", "merge"]))
@click.option("--person", help="Only decisions about this person.")
@click.option("--track", "track_id", type=int, help="Only decisions made on this track.")
@click.option("--limit", type=click.IntRange(min=1))
@_FORMAT
@click.pass_obj
def list_(app, kind, person, track_id, limit, fmt):
    """List reviewers' decisions, oldest first."""
    rows = app.repo().list_reviews(kind=kind, person=person, track_id=track_id, limit=limit)
    if fmt == "json":
        click.echo(_json(rows))
    elif not rows:
        click.echo("no reviews")
    else:
        click.echo(render_table([{k: ("" if v is None else _iso(v)) for k, v in r.items()} for r in rows],
                                REVIEW_COLUMNS))


RETRO_COLUMNS = ["hit_id", "person", "track_id", "score", "threshold", "face_px", "first_seen_s",
                 "last_seen_s", "first_seen_at"]


@click.command("retro-match")
@click.option("--person", "persons", multiple=True,
              help="Look for this person (repeatable; default: everyone enrolled).")
@_FORMAT
@click.pass_obj
def retro_match_cmd(app, persons, fmt):
    """Look for enrolled people among stored unknown tracks; store hits marked "retro"."""
    from ..watchlist.retro import retro_match

    encoder = app.encoder()
    hits = retro_match(app.repo(), encoder.name, app.bands(encoder), app.config().decision,
                       list(persons), operator=app.operator)
    if fmt == "json":
        click.echo(_json(hits))
    elif not hits:
        click.echo("no retro hits")
    else:
        rows = [{k: (f"{v:.3f}" if isinstance(v, float) else _iso(v)) for k, v in h.items()} for h in hits]
        click.echo(render_table(rows, RETRO_COLUMNS))


COMMANDS: list = [review, retro_match_cmd]
