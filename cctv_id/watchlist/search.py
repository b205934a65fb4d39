"""Search by photo over every stored track, known or unknown (the investigator's "where else
was this person?").

Owns :func:`search_by_photo`: one face in the photo (no face or several: one clear error),
embedded by the current recogniser; the candidate tracks narrowed in the database (camera,
time); ranked by the FAISS track index of that recogniser (:mod:`cctv_id.watchlist.track_index`)
— embeddings of other recognisers are never compared, only counted — and each search written
to the audit log once. Also the JSON form of result rows shared by the CLI and the web UI.
Returns plain dicts; the CLI (``cctv_id/cli/search.py``) only formats them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from ..errors import InputError
from ..store.audit import default_operator

RESULT_KEYS = ("rank", "track_id", "person", "person_score", "score", "camera", "run_id", "status",
               "first_seen_s", "last_seen_s", "first_seen_at", "last_seen_at", "n_detections",
               "max_face_px", "best_shot_s", "best_shot_bbox", "crop_path", "context_path",
               "source_path", "model")

def search_by_photo(repo, detector, encoder, data_dir, photo_path, top: int = 10,
                    since: datetime | None = None, until: datetime | None = None,
                    camera: str | None = None, operator: str | None = None
                    ) -> tuple[list[dict], dict]:
    """Stored tracks most similar to the one face in ``photo_path``, best first.

    ``since``/``until`` (aware datetimes) keep tracks seen in that interval, ``camera`` those
    of one camera (unknown camera: NotFoundError naming the known ones). Only tracks embedded
    by ``encoder.name`` are searched. Returns (results, info): each result has the keys of
    :data:`RESULT_KEYS` (``person``: the track's best non-rejected hit, None when unknown;
    ``score``: cosine similarity, rounded to 4 places); info says what was searched
    (``model``, ``searched``, ``skipped_other_models`` {model: n}, ``index`` sync, ``face_px``).
    The search is recorded in the audit log (action "search") by ``operator``.
    """
    from .enrol import choose_face, read_image
    from .track_index import TrackIndex

    if int(top) < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    if since is not None and until is not None and since > until:
        raise InputError(f"--since {since.isoformat()} is after --until {until.isoformat()}")
    model = encoder.name
    filtered = camera is not None or since is not None or until is not None
    # the cheap checks first: an unknown camera fails before any model runs
    allowed = repo.track_ids(model=model, camera=camera, since=since, until=until) if filtered else None

    photo = Path(photo_path)
    image = read_image(photo)
    dets = detector.detect(image)
    i = choose_face(dets, photo, largest=False)
    vector = encoder.embed_faces(image, dets.landmarks[i:i + 1]).vectors[0]
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()

    index = TrackIndex.open(repo, model, Path(data_dir) / "index")
    found = index.search(vector, int(top), allowed_ids=allowed)
    rows = {r["track_id"]: r for r in repo.query_tracks(ids=[t for t, _ in found])} if found else {}
    results = []
    for track_id, score in found:
        row = rows.get(track_id)
        if row is None:  # deleted since the index saw it
            continue
        results.append({k: row.get(k) for k in RESULT_KEYS}
                       | {"rank": len(results) + 1, "score": round(float(score), 4)})

    others = {m: n for m, n in repo.track_models().items() if m != model}
    info = {"model": model, "searched": len(index) if allowed is None else len(allowed),
            "skipped_other_models": others, "index": dict(index.last_sync),
            "face_px": round(float(dets.heights[i]), 1), "photo_sha256": sha}
    repo.record_audit(
        operator or default_operator(), "search",
        params={"photo": str(photo.resolve()), "photo_sha256": sha, "top": int(top),
                "since": since, "until": until, "camera": camera, "model": model},
        outcome={"n_results": len(results), "track_ids": [r["track_id"] for r in results],
                 "skipped_other_models": sum(others.values())})
    return results, info
