"""Consistency check of database <-> evidence files <-> index caches (``cctv-id fsck``).

Finds, and with ``repair=True`` fixes, for evidence files (best-shot crops ``*.jpg`` and
context frames ``*.ctx.jpg`` under ``data_dir/crops``):
- pending files left by a crash: published if their transaction committed (the database
  references them), deleted otherwise;
- files the database references that are missing (the reference is cleared on repair);
- files no database row references (deleted on repair);
- FAISS index caches built for another watchlist generation (deleted on repair);
- stored enrolment photos: pending copies (published or deleted), missing ones (reported),
  unreferenced ones (deleted on repair);
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
        _pending(report, repair, kind(rel), rel, committed,
                 lambda p=pending, r=rel, c=committed: evidence.settle(p, r, c))

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
                _orphan(report, repair, kind(rel), rel, path)

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

    _check_enrolment_photos(repo, Path(data_dir), report, repair)

    for run in repo.list_runs(status="running"):
        if not pid_alive(run.get("pid")):
            report.notes.append(f"run {run['id']} ({Path(run['source_path']).name}) was left "
                                "running by a process that has gone; `cctv-id process` on the "
                                "same file resumes it")
    return report


def _check_enrolment_photos(repo, data_dir: Path, report: FsckReport, repair: bool) -> None:
    """Stored enrolment photos (``data_dir/enrolments``): a pending copy left by a crash is
    published when its enrolment committed (the database names it) and deleted otherwise;
    a referenced photo that is missing is reported (re-enrol the person to restore it: the
    embedding itself is in the database); unreferenced photo files are deleted on repair."""
    root = data_dir / "enrolments"
    referenced = repo.stored_photos()
    for rel in sorted(referenced):
        if not (data_dir / rel).is_file() and not (data_dir / (rel + ".pending")).is_file():
            report.problems.append(f"enrolment photo {rel} is referenced but missing "
                                   "(re-enrol the person with --replace to store it again)")
    if not root.is_dir():
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(data_dir).as_posix()
        if rel.endswith(".pending"):
            final = rel[: -len(".pending")]
            committed = final in referenced
            _pending(report, repair, "enrolment photo", final, committed,
                     lambda p=path, f=final, c=committed: p.replace(data_dir / f) if c
                     else p.unlink(missing_ok=True), repaired_label="enrolment photo ")
        elif rel not in referenced:
            _orphan(report, repair, "enrolment photo", rel, path)


def _pending(report: FsckReport, repair: bool, label: str, rel: str, committed: bool,
             settle, repaired_label: str = "") -> None:
    """A pending file left by a crash: settled on repair (published when its transaction
    committed, deleted otherwise), else reported."""
    if repair:
        settle()
        report.repaired.append(f"published {repaired_label}{rel}" if committed
                               else f"deleted pending {repaired_label}{rel}")
    else:
        report.problems.append(f"{label} {rel} committed but not published" if committed
                               else f"{label} {rel} left pending by an unfinished transaction")


def _orphan(report: FsckReport, repair: bool, label: str, rel: str, path: Path) -> None:
    """A file no database row references: deleted on repair, else reported."""
    if repair:
        path.unlink(missing_ok=True)
        report.repaired.append(f"deleted orphan {label} {rel}")
    else:
        report.problems.append(f"{label} {rel} is not referenced by the database")
