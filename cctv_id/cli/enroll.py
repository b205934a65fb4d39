"""``cctv-id enroll``: add people to the watchlist from photos."""

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
@click.argument("photos", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def enroll(app, name: str | None, from_dir: Path | None, largest: bool, photos: tuple[Path, ...]):
    """Enrol a person from PHOTOS (--name), or everyone under --from-dir.

    Every photo must show one face (or use --largest). Photos are all checked before
    anything is written, so a bad photo changes nothing.
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
    enrol.commit(app.repo(), items, encoder.name)
    people = sorted({it.person for it in items})
    click.echo(f"enrolled {len(items)} photo(s) of {len(people)} person(s): {', '.join(people)}")


COMMANDS = [enroll]
