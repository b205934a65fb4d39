"""``cctv-id enroll``: add people to the watchlist from photos, or re-enrol them (--replace).

Photos are copied under data_dir and the enrolment is audited (operator: ``--operator`` or
the OS user), both by :func:`cctv_id.watchlist.enrol.commit`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError


@click.command()
@click.option("--name", "name", metavar="NAME", help="Person the PHOTOS show.")
@click.option("--from-dir", "from_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder with one sub-folder per person (folder name = person name).")
@click.option("--largest", is_flag=True,
              help="If a photo shows several faces, use the largest instead of failing.")
@click.option("--replace", is_flag=True,
              help="Re-enrol: the person's previous photos and embeddings (every model) are "
                   "replaced by these, in one transaction.")
@click.option("--no-retro", is_flag=True,
              help="Do not look for the enrolled people among the unknown tracks already stored.")
@click.argument("photos", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def enroll(app, name: str | None, from_dir: Path | None, largest: bool, replace: bool,
           no_retro: bool, photos: tuple[Path, ...]):
    """Enrol a person from PHOTOS (--name), or everyone under --from-dir.

    Every photo must show one face (or use --largest). Photos are all checked before
    anything is written, so a bad photo changes nothing. Without --replace the photos are
    added to the person's enrolments. Then the unknown tracks already stored are checked for
    the enrolled people (retro-matching, as `cctv-id retro-match`); what is found is stored
    as hits marked "retro".
    """
    from ..watchlist import enrol

    if from_dir and (name or photos):
        raise InputError("use either --from-dir DIR or --name NAME PHOTO..., not both")
    if from_dir:
        pairs = enrol.photos_from_dir(from_dir)
    elif name and photos:
        pairs = [(name, p) for p in photos]
    elif name:
        raise InputError("no photos given: cctv-id enroll --name NAME PHOTO...")
    else:
        raise InputError("say who to enrol: --name NAME PHOTO... or --from-dir DIR")
    detector = app.detector(upscale=1.0, tile_size=0)
    encoder = app.encoder()
    items = enrol.prepare(pairs, detector, encoder, largest=largest)
    result = enrol.commit(app.repo(), items, encoder.name, data_dir=app.data_dir(),
                          operator=app.operator, replace=replace)
    people = result["persons"]
    replaced = f", replacing {result['n_replaced']} old enrolment(s)" if replace else ""
    click.echo(f"enrolled {len(items)} photo(s) of {len(people)} person(s): {', '.join(people)}"
               f"{replaced}")
    if not no_retro:
        from ..watchlist.retro import retro_match

        found = retro_match(app.repo(), encoder.name, app.bands(encoder), app.config().decision,
                            list(people), operator=app.operator)
        for hit in found:
            when = hit.get("first_seen_at")
            when = when.isoformat().replace("+00:00", "Z") if hasattr(when, "isoformat") else \
                f"{hit.get('first_seen_s', 0):.1f} s"
            click.echo(f"  retro hit: {hit['person']} in stored track {hit['track_id']} "
                       f"(run {hit['run_id']}, {when}, score {hit['score']:.3f})")
        if found:
            click.echo(f"retro-matching: {len(found)} earlier sighting(s) stored as hits")


COMMANDS = [enroll]
