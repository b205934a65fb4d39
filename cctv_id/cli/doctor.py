"""``cctv-id doctor``: which models and libraries are present, and whether the database answers."""

from __future__ import annotations

import importlib.metadata as md
import json

import click

from .. import __version__

LIBRARIES = ["numpy", "opencv-python-headless", "onnxruntime", "torch", "dlib-bin",
             "insightface", "faiss-cpu", "av", "sqlalchemy", "alembic", "pydantic"]


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "missing"


def model_status() -> list[dict]:
    from ..recognize.manifest import entry_sha256_ok, load_manifest

    rows = []
    for name, entry in load_manifest().get("models", {}).items():
        row = {"model": name, "role": entry.get("role", ""), "detail": entry.get("file", "")}
        try:
            ok = entry_sha256_ok(entry)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            ok, row["detail"] = None, str(exc)
        row["present"] = ok is not None
        row["sha256_ok"] = bool(ok)
        rows.append(row)
    return rows


@click.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def doctor(app, fmt):
    """Check models, weights, libraries and the database."""
    report = {
        "version": __version__,
        "libraries": {lib: _version(lib) for lib in LIBRARIES},
        "models": model_status(),
    }
    try:
        repo = app.repo()
        report["database"] = {"url": repo.safe_url, "ok": True,
                              "persons": len(repo.list_persons())}
    except Exception as exc:  # noqa: BLE001 - reported
        report["database"] = {"ok": False, "error": str(exc)}
    try:
        import onnxruntime as ort

        report["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        report["onnxruntime_providers"] = []
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"cctv-id {report['version']}")
        click.echo("libraries:")
        for lib, ver in report["libraries"].items():
            click.echo(f"  {lib:24s} {ver}")
        click.echo("models:")
        for m in report["models"]:
            state = ("ok" if m["sha256_ok"] else "CHECKSUM MISMATCH") if m["present"] else "MISSING"
            click.echo(f"  {m['model']:24s} {state:18s} {m.get('detail', '')}")
        db = report["database"]
        click.echo("database: " + (f"{db['url']} ok ({db['persons']} persons)" if db["ok"]
                                   else f"ERROR {db['error']}"))
    bad = [m for m in report["models"] if not m["present"] or not m["sha256_ok"]]
    if bad or not report["database"]["ok"]:
        raise SystemExit(1)


COMMANDS = [doctor]
