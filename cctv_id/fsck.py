"""Consistency check of database <-> evidence files <-> index caches (``cctv-id fsck``).

Finds, and with ``repair=True`` fixes, for evidence files (best-shot crops ``*.jpg`` and
context frames ``*.ctx.jpg`` under ``data_dir/crops``):
- pending files left by a crash: published if their transaction committed (the database
  references them), deleted otherwise;
- files the database references that are missing (the reference is cleared on repair);
- files no database row references (deleted on repair);
- FAISS index caches built for another watchlist generation (deleted on repair);
and reports runs left "running" by a process that no longer exists (resume them with
``cctv-id process``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .liveness import pid_alive
from .pipeline.evidence import EvidenceWriter


@dataclass
class FsckReport:
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


def check(repo, data_dir: Path, repair: bool = False) -> FsckReport:
    report = FsckReport()
    evidence = EvidenceWriter(Path(data_dir))
    referenced = set(repo.track_crop_paths())

    def kind(rel: str) -> str:
        return "context frame" if evidence.is_context(rel) else "crop"

    pending_rels = set()
    for pending, rel, committed in evidence.pending_states(referenced):
        pending_rels.add(rel)
        if repair:
            evidence.settle(pending, rel, committed)
            report.repaired.append(f"published {rel}" if committed else f"deleted pending {rel}")
        else:
            report.problems.append(
                f"{kind(rel)} {rel} committed but not published" if committed
                else f"{kind(rel)} {rel} left pending by an unfinished transaction")

    for rel in sorted(referenced):
        if not evidence.path(rel).is_file() and not (rel in pending_rels and not repair):
            if repair:
                repo.clear_crop_path(rel)
                report.repaired.append(f"cleared reference to missing {kind(rel)} {rel}")
            else:
                report.problems.append(f"{kind(rel)} {rel} is referenced but missing")

    crops_root = Path(data_dir) / "crops"
    if crops_root.is_dir():
        for path in sorted(crops_root.rglob("*.jpg")):  # crops and context frames
            rel = evidence.relpath(path)
            if rel not in referenced:
                if repair:
                    path.unlink(missing_ok=True)
                    report.repaired.append(f"deleted orphan {kind(rel)} {rel}")
                else:
                    report.problems.append(f"{kind(rel)} {rel} is not referenced by the database")

    generation = repo.watchlist_generation()
    index_dir = Path(data_dir) / "index"
    if index_dir.is_dir():
        for path in sorted(index_dir.glob("*.faiss")):
            if not path.stem.endswith(f"-gen{generation}"):
                if repair:
                    path.unlink(missing_ok=True)
                    report.repaired.append(f"deleted stale index cache {path.name}")
                else:
                    report.problems.append(
                        f"index cache {path.name} is stale (watchlist generation is {generation})")
        for tmp in index_dir.glob("*.tmp"):
            if repair:
                tmp.unlink(missing_ok=True)
                report.repaired.append(f"deleted partial index file {tmp.name}")
            else:
                report.problems.append(f"partial index file {tmp.name}")

    for run in repo.list_runs(status="running"):
        if not pid_alive(run.get("pid")):
            report.notes.append(f"run {run['id']} ({Path(run['source_path']).name}) was left "
                                "running by a process that has gone; `cctv-id process` on the "
                                "same file resumes it")
    return report
