"""Turn the decision stage's results into the store's records."""

from __future__ import annotations

from ..store.records import TrackRecord
from ..types import TrackDecision


def decisions_to_records(decisions: list[TrackDecision], crops: dict[int, str | None]
                         ) -> list[TrackRecord]:
    """One ``TrackRecord`` (with its hits) per decision; ``crops`` maps track id -> crop path."""
    out = []
    for d in decisions:
        crop = crops.get(d.identity.track.track_id)
        hit_crops = {h.person_id: crop for h in d.hits}
        out.append(TrackRecord.from_decision(d, crop_path=crop, hit_crop_paths=hit_crops))
    return out
