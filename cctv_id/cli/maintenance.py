"""``cctv-id fsck``: check (and repair) database <-> evidence files <-> index caches."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--repair", is_flag=True, help="Fix what is found (publish/delete pending crops, "
                                             "clear missing references, delete orphans and stale caches).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def fsck(app, repair: bool, fmt: str):
    """Check that the database, the evidence crops and the index caches agree.

    Exit code 0 when consistent (or everything found was repaired), 1 otherwise.
    """
    from ..fsck import check

    report = check(app.repo(), app.data_dir(), repair=repair)
    if fmt == "json":
        click.echo(json.dumps({"clean": report.clean, "problems": report.problems,
                               "repaired": report.repaired, "notes": report.notes}, indent=2))
    else:
        for line in report.problems:
            click.echo(f"problem: {line}")
        for line in report.repaired:
            click.echo(f"repaired: {line}")
        for line in report.notes:
            click.echo(f"note: {line}")
        click.echo("clean" if report.clean else f"{len(report.problems)} problem(s); "
                                                "run `cctv-id fsck --repair` to fix them")
    if not report.clean:
        raise SystemExit(1)


COMMANDS = [fsck]
