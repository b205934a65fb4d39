"""``export_case``: one person's hits as a self-describing, verifiable case.

Layout of a case (a folder, or a zip of the same tree when the target ends in ``.zip``)::

    hits.json / hits.csv     the hits (fields of ``cctv-id hits --format json`` plus the case
                             files of each hit); rejected hits (review) are left out
    crops/hit<id>.jpg        best-shot crop of the hit's track
    context/hit<id>.jpg      the whole frame of that best shot (downscaled, unannotated)
    clips/hit<id>.mp4        the source re-decoded from first_seen - margin to
                             last_seen + margin (at most max_clip_s), face boxed per frame
    manifest.json            tool version, created_at (UTC), operator, the query, per run its
                             source (path, recorded sha256, whether the file still matches),
                             model sha256s, config and status; every clip made or why not;
                             every other file with its sha256 and size

A clip is made only from the very file that was processed: its sha256 is checked against
the one recorded for the run first; a missing or changed file, or a live (URL) source, gets
no clip, and the manifest says why. The case is built in a hidden sibling of the target and
moved into place at the end, so a failure leaves nothing half-written; an existing target is
refused. Every export is audited once ("export").
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import CctvIdError, InputError
from ..serialize import iso as _iso, jsonable, to_csv
from .clips import ClipJob, clip_window, render_clips
from .manifest import MANIFEST_NAME, write_manifest

_STORED = (".jpg", ".mp4")  # already compressed: stored as they are in a zip


@dataclass
class ExportResult:
    out: str
    kind: str  # "folder" | "zip"
    person: str
    hits: int
    clips: int
    clips_skipped: list[dict] = field(default_factory=list)  # {"hit_id", "reason"}
    missing_evidence: list[str] = field(default_factory=list)
    files: int = 0  # files listed in the manifest (all but manifest.json)
    bytes: int = 0  # of the whole case (the zip's size for a zip)
    seconds: float = 0.0
    manifest_sha256: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _check_target(out: Path) -> None:
    if os.path.lexists(out):
        raise InputError(f"export target {out} already exists; choose a new path")
    if not out.parent.is_dir():
        raise InputError(f"export target {out}: folder {out.parent} does not exist")


def _is_url(path: str) -> bool:
    return "://" in str(path)


def _source_state(run: dict, cache: dict) -> tuple[bool | None, str | None, str | None]:
    """(matches, sha256 now, reason there is no clip) for the run's source file."""
    from ..video.source import file_sha256

    path = run["source_path"]
    if _is_url(path):
        return None, None, "live stream source: there is no recorded file to cut a clip from"
    if path not in cache:
        try:
            cache[path] = file_sha256(path)
        except (OSError, CctvIdError):
            cache[path] = None
    now = cache[path]
    if now is None:
        return False, None, f"source file {path} is missing or unreadable"
    if now != run["source_sha256"]:
        return False, now, (f"source file {path} changed since it was processed (sha256 "
                            f"{now[:12]}…, recorded {run['source_sha256'][:12]}…)")
    return True, now, None


def _copy(src: Path, dst: Path) -> bool:
    if not src.is_file():
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return True


def _write_hits(root: Path, rows: list[dict]) -> None:
    (root / "hits.json").write_text(json.dumps(rows, indent=2) + "\n")
    (root / "hits.csv").write_text(to_csv(rows, ["hit_id", "person", "camera"]))


def _zip_tree(root: Path, target: Path) -> None:
    with zipfile.ZipFile(target, "w") as zf:
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        for rel in names:
            kind = zipfile.ZIP_STORED if rel.endswith(_STORED) else zipfile.ZIP_DEFLATED
            zf.write(root / rel, rel, compress_type=kind)
    with open(target, "rb+") as fh:
        os.fsync(fh.fileno())


def _place(tmp_dir: Path, out: Path, as_zip: bool) -> None:
    """Move the finished case into place; refuses to replace anything that appeared."""
    if as_zip:
        tmp_zip = tmp_dir.with_name(tmp_dir.name + ".zip")
        try:
            _zip_tree(tmp_dir, tmp_zip)
            try:
                os.link(tmp_zip, out)  # fails if out exists: no clobbering
            except FileExistsError:
                raise InputError(f"export target {out} already exists; choose a new path") from None
            except OSError:  # a filesystem without hard links
                _check_target(out)
                os.replace(tmp_zip, out)
        finally:
            tmp_zip.unlink(missing_ok=True)
            shutil.rmtree(tmp_dir, ignore_errors=True)
    else:
        _check_target(out)
        os.rename(tmp_dir, out)


def export_case(repo, data_dir, out, *, person: str, operator: str, since: datetime | None = None,
                until: datetime | None = None, camera: str | None = None,
                clip_margin_s: float = 2.0, max_clip_s: float = 20.0, clips: bool = True,
                progress: bool = False) -> ExportResult:
    """Export ``person``'s hits (optionally of one camera, overlapping [since, until]) to
    ``out`` (a new folder, or a zip when it ends with ``.zip``). Raises ``InputError`` for a
    target that exists or bad options, ``NotFoundError`` for an unknown person or camera."""
    t0 = time.perf_counter()
    out = Path(out).expanduser().absolute()
    data_dir = Path(data_dir)
    if clip_margin_s < 0 or max_clip_s <= 0:
        raise InputError("--clip-margin must be >= 0 and --max-clip-s > 0")
    _check_target(out)
    as_zip = out.suffix.lower() == ".zip"
    query = {"person": person, "camera": camera, "since": _iso(since), "until": _iso(until),
             "clip_margin_s": clip_margin_s, "max_clip_s": max_clip_s, "clips": clips}
    rows = repo.query_hits(person=person, camera=camera, since=since, until=until,
                           exclude_rejected=True)
    rows = [r for r in rows if r.get("review_status") != "rejected"]
    params = {**query, "out": str(out)}
    try:
        result = _build(repo, data_dir, out, as_zip, rows, query, operator, clips,
                        clip_margin_s, max_clip_s, progress)
    except BaseException as exc:
        try:
            repo.record_audit(operator, "export", params,
                              {"status": "failed", "error": str(exc) or type(exc).__name__})
        except Exception:  # noqa: BLE001 - the export's own error is the one to report
            pass
        raise
    result.person, result.seconds = person, time.perf_counter() - t0
    repo.record_audit(operator, "export", params,
                      {"status": "ok", "hits": result.hits, "clips": result.clips,
                       "files": result.files, "bytes": result.bytes,
                       "manifest_sha256": result.manifest_sha256})
    return result


def _build(repo, data_dir: Path, out: Path, as_zip: bool, rows: list[dict], query: dict,
           operator: str, clips: bool, margin_s: float, max_s: float,
           progress: bool) -> ExportResult:
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        result = ExportResult(out=str(out), kind="zip" if as_zip else "folder",
                              person=query["person"], hits=len(rows), clips=0)
        runs: dict[int, dict] = {}
        for r in rows:
            if r["run_id"] not in runs:
                runs[r["run_id"]] = repo.get_run(r["run_id"])
        sha_cache: dict[str, str | None] = {}
        run_entries = []
        for run_id, run in sorted(runs.items()):
            matches, now, reason = _source_state(run, sha_cache)
            run["_clip_reason"] = reason
            run_entries.append({
                "run_id": run_id, "camera": run["camera"], "source_path": run["source_path"],
                "source_sha256": run["source_sha256"], "source_sha256_now": now,
                "source_matches": matches, "model_sha256s": run["model_sha256s"],
                "config": run["config"], "tool_version": run["tool_version"],
                "status": run["status"], "start_time": _iso(run["start_time"]),
                "started_at": _iso(run["started_at"]), "finished_at": _iso(run["finished_at"]),
            })

        hits_out = []
        for r in rows:
            hid = r["hit_id"]
            row = jsonable(r)
            for key, folder, src in (("case_crop", "crops", r.get("crop_path")),
                                     ("case_context", "context", r.get("context_path"))):
                rel = f"{folder}/hit{hid:06d}.jpg"
                if src and _copy(data_dir / src, tmp / rel):
                    row[key] = rel
                else:
                    row[key] = None
                    if src:
                        result.missing_evidence.append(f"hit {hid}: {src} is missing under data_dir")
            row["case_clip"] = None
            hits_out.append(row)

        clip_entries = _make_clips(repo, tmp, rows, runs, hits_out, result, margin_s, max_s,
                                   progress) if clips and rows else []
        _write_hits(tmp, hits_out)
        manifest = {
            "tool": "cctv-id", "tool_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "operator": operator, "query": query, "hits": len(rows),
            "hit_ids": [r["hit_id"] for r in rows], "runs": run_entries, "clips": clip_entries,
            "missing_evidence": result.missing_evidence,
        }
        result.manifest_sha256 = write_manifest(tmp, manifest)
        files = [p for p in tmp.rglob("*") if p.is_file()]
        result.files = len(files) - 1  # listed in the manifest (which is not listed)
        result.bytes = sum(p.stat().st_size for p in files)
        _place(tmp, out, as_zip)
        if as_zip:
            result.bytes = out.stat().st_size
        return result
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise CctvIdError(f"export to {out} failed, nothing was written: "
                          f"{exc.strerror or exc}{where}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _make_clips(repo, tmp: Path, rows, runs, hits_out, result: ExportResult, margin_s, max_s,
                progress: bool) -> list[dict]:
    entries: list[dict] = []
    by_id = {h["hit_id"]: h for h in hits_out}
    jobs_by_run: dict[int, list[ClipJob]] = {}
    for r in rows:
        run = runs[r["run_id"]]
        if run["_clip_reason"]:
            entries.append({"hit_id": r["hit_id"], "file": None, "reason": run["_clip_reason"]})
            continue
        lo, hi = clip_window(r["first_seen_s"], r["last_seen_s"], r["best_shot_s"], margin_s, max_s)
        jobs_by_run.setdefault(r["run_id"], []).append(ClipJob(
            hit_id=r["hit_id"], path=tmp / "clips" / f"hit{r['hit_id']:06d}.mp4",
            start_s=lo, end_s=hi, trajectory=[], caption=f"hit {r['hit_id']}  {r['person']}"))
    if jobs_by_run:
        _render(repo, tmp, rows, runs, jobs_by_run, by_id, entries, result, progress)
    for e in entries:
        if e["file"] is None:
            result.clips_skipped.append({"hit_id": e["hit_id"], "reason": e["reason"]})
    return sorted(entries, key=lambda e: e["hit_id"])


def _render(repo, tmp: Path, rows, runs, jobs_by_run, by_id, entries, result, progress) -> None:
    trajectories = {}
    for run_id in jobs_by_run:
        for t in repo.list_tracks(run_id):
            trajectories[t["track_id"]] = t["trajectory"] or []
    track_of = {r["hit_id"]: r["track_id"] for r in rows}
    total_s = 0.0
    for jobs in jobs_by_run.values():
        for job in jobs:
            job.trajectory = [tuple(p) for p in trajectories.get(track_of[job.hit_id], [])]
            total_s += job.end_s - job.start_s
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=round(total_s, 1), unit="s", desc="clips", file=sys.stderr,
                   dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s of video")
    try:
        for run_id, jobs in sorted(jobs_by_run.items()):
            run = runs[run_id]
            tick = None
            if bar is not None:
                def tick(dt, bar=bar):
                    bar.update(max(0.0, min(dt, bar.total - bar.n)))
            codec, fps = render_clips(Path(run["source_path"]), jobs, start_time=run["start_time"],
                                      on_frame=tick)
            for job in jobs:
                if job.frames == 0:
                    job.path.unlink(missing_ok=True)
                    entries.append({"hit_id": job.hit_id, "file": None,
                                    "reason": "no frames of the source in the clip's window"})
                    continue
                rel = job.path.relative_to(tmp).as_posix()
                by_id[job.hit_id]["case_clip"] = rel
                entries.append({"file": rel, **job.result(codec, fps)})
                result.clips += 1
    finally:
        if bar is not None:
            bar.close()


__all__ = ["ExportResult", "export_case", "MANIFEST_NAME"]
