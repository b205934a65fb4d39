"""``cctv-id`` watchlist management and governance: persons, remove-person, purge, audit, reembed.

Thin wrappers: the work is done by :mod:`cctv_id.governance` (remove-person, purge),
:mod:`cctv_id.reembed` and the repository's audit log; every change is audited under the
operator of ``--operator`` (or the OS user). Destructive commands ask for confirmation on a
terminal and refuse without ``--yes`` otherwise.
"""

from __future__ import annotations

import json
import sys

import click

from ..errors import InputError
from .process import parse_time
from ..serialize import iso as _iso, jsonable as _jsonable
from .query import render_table


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{question.rstrip('?')}: pass --yes to confirm (not a terminal)")
    click.confirm(question, abort=True)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_obj
def persons(app, fmt):
    """List the people on the watchlist: photos, hits and the models of their embeddings."""
    rows = [{k: _iso(v) for k, v in r.items()} for r in app.repo().list_persons()]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("the watchlist is empty")
    else:
        click.echo(render_table([{**r, "models": ",".join(r["models"]) or "-"} for r in rows],
                                ["name", "n_photos", "n_hits", "models", "created_at"]))


@click.command("remove-person")
@click.argument("person")
@click.option("--purge-hits", is_flag=True,
              help="Also delete the person's hits and the tracks they were on (crops, "
                   "embeddings), then the person. Without it past hits stay as evidence.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def remove_person(app, person, purge_hits, yes, fmt):
    """Take PERSON off the watchlist: photos, embeddings (every model) and index entries."""
    from .. import governance

    repo = app.repo()
    repo.require_person(person)  # before asking anything; the removal checks again
    _confirm(yes, f"remove {person!r} from the watchlist"
                  f"{' and delete their hits' if purge_hits else ''}?")
    out = governance.remove_person(repo, app.data_dir(), person, app.operator,
                                   purge_hits=purge_hits)
    if fmt == "json":
        click.echo(json.dumps(_jsonable(out), indent=2))
        return
    text = (f"removed {person}: {out['n_enrolments']} enrolment(s), "
            f"{out['n_photo_files_deleted']} stored photo(s)")
    if purge_hits:
        text += (f"; purged {out['n_hits']} hit(s), {out['n_tracks']} track(s), "
                 f"{out['n_files_deleted']} file(s)")
        if out["tracks_kept"]:
            text += f" ({len(out['tracks_kept'])} track(s) kept: other people's hits are on them)"
    else:
        text += "; past hits kept"
    click.echo(text)


@click.command()
@click.option("--unknown-older-than", metavar="DURATION",
              help="Delete unknown tracks (no hit) last seen longer ago than this (30d, 12h, 2w).")
@click.option("--hits-older-than", metavar="DURATION",
              help="Delete hits last seen longer ago than this, and their tracks once no hit "
                   "is left on them.")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def purge(app, unknown_older_than, hits_older_than, dry_run, fmt):
    """Retention: delete old unknown tracks and hits with their crops and index entries.

    The audit log is never purged.
    """
    from .. import governance

    out = governance.purge(app.repo(), app.data_dir(), app.operator,
                           unknown_older_than=unknown_older_than,
                           hits_older_than=hits_older_than, dry_run=dry_run)
    if fmt == "json":
        click.echo(json.dumps(_jsonable(out), indent=2))
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {out['n_hits']} hit(s), {out['n_tracks']} track(s) "
               f"({out['n_unknown_tracks']} unknown), "
               f"{len(out['files']) if dry_run else out['n_files_deleted']} file(s)")


@click.command()
@click.option("--since", metavar="ISO", help="Entries at or after this time (UTC).")
@click.option("--until", metavar="ISO", help="Entries at or before this time (UTC).")
@click.option("--action", help="Only this action (enrol, remove-person, search, export, purge, "
                               "review, reembed).")
@click.option("--operator", "who", metavar="NAME", help="Only entries by this operator.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many entries.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_obj
def audit(app, since, until, action, who, limit, fmt):
    """Show the audit log (who did what to the biometric data, when), oldest first."""
    from ..store.audit import AUDITED_ACTIONS

    since, until = parse_time(since, "--since"), parse_time(until, "--until")
    if action is not None and action not in AUDITED_ACTIONS:
        raise InputError(f"unknown action {action!r}: one of {', '.join(AUDITED_ACTIONS)}")
    if since and until and since > until:
        raise InputError("--since is after --until")
    rows = app.repo().list_audit(since=since, until=until, action=action, operator=who,
                                 limit=limit)
    if fmt == "json":
        click.echo(json.dumps(_jsonable(rows), indent=2))
    elif not rows:
        click.echo("no audit entries")
    else:
        click.echo(render_table(
            [{**r, "params": json.dumps(r["params"], sort_keys=True),
              "outcome": json.dumps(r["outcome"], sort_keys=True), "at": _iso(r["at"])}
             for r in rows], ["id", "at", "operator", "action", "params", "outcome"]))


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Tracks written per transaction (an interrupted run resumes).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def reembed(app, yes, batch, no_progress, fmt):
    """Recompute stored track and enrolment embeddings with the current recogniser.

    Tracks are re-embedded from their saved crops, enrolments from their stored photos;
    what cannot be re-embedded is reported (tracks then have no embedding).
    """
    from .. import reembed as rb

    repo = app.repo()
    encoder = app.encoder()
    n_tracks, n_photos = rb.count_todo(repo, encoder.name)
    if n_tracks + n_photos == 0:
        click.echo(f"nothing to re-embed: every embedding was made by {encoder.name}")
        return
    _confirm(yes, f"re-embed {n_tracks} track(s) and {n_photos} enrolment photo(s) "
                  f"with {encoder.name}?")
    show = not no_progress and fmt == "text"
    with click.progressbar(length=n_tracks + n_photos, label="re-embedding", file=sys.stderr,
                           hidden=not show) as bar:
        out = rb.reembed(repo, app.data_dir(), encoder,
                         lambda: app.detector(upscale=1.0, tile_size=0), app.operator,
                         batch=batch, progress=bar.update)
    if fmt == "json":
        click.echo(json.dumps(_jsonable(out), indent=2))
        return
    n_done = out["n_tracks_landmarks"] + out["n_tracks_detected"]
    click.echo(f"re-embedded {n_done} of {out['n_tracks'] - out['n_tracks_unembedded']} "
               f"embedded track(s) and {out['n_enrolments']} enrolment photo(s) with "
               f"{out['model']}")
    for t in out["tracks_failed"]:
        click.echo(f"  track {t['track_id']}: not re-embeddable ({t['reason']}); "
                   "its embedding was removed")
    for e in out["enrolments_failed"]:
        click.echo(f"  {e['person']} photo {e['photo_sha256'][:12]}: not re-embeddable "
                   f"({e['reason']}); re-enrol with cctv-id enroll --replace")


COMMANDS = [persons, remove_person, purge, audit, reembed]
