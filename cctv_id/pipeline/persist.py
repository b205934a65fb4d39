"""Turn the decision stage's results into the store's records, with their evidence.

Each track's record carries the paths of its evidence files (best-shot crop, context frame),
the best shot's landmarks in crop coordinates (so the crop can be re-embedded later) and the
track's trajectory (boxes per detection, for evidence clips); each hit carries the crop and
context frame of its track.
"""

from __future__ import annotations

from dataclasses import replace

from ..store.records import TrackRecord
from ..types import TrackDecision
from .evidence import TrackEvidence


def decisions_to_records(decisions: list[TrackDecision],
                         evidence: dict[int, TrackEvidence]) -> list[TrackRecord]:
    """One ``TrackRecord`` (with its hits) per decision; ``evidence`` maps track id -> the
    files written for it."""
    out = []
    for d in decisions:
        track = d.identity.track
        ev = evidence.get(track.track_id) or TrackEvidence()
        record = TrackRecord.from_decision(d, crop_path=ev.crop,
                                           hit_crop_paths={h.person_id: ev.crop for h in d.hits})
        landmarks = None
        if ev.crop and track.best:
            landmarks = tuple((float(x), float(y)) for x, y in track.best[0].patch_landmarks)
        out.append(replace(
            record,
            crop_landmarks=landmarks,
            context_path=ev.context,
            trajectory=tuple(tuple(float(v) for v in p) for p in track.trajectory) or None,
            hits=tuple(replace(h, context_path=ev.context) for h in record.hits),
        ))
    return out
