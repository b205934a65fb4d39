"""Finished tracks -> decisions -> one stored transaction: shared by files and live cameras.

Owns the tail of the data flow after tracking: recognise eligible tracks (best-K samples,
batched across tracks), match against the watchlist, decide per face-size band, write the
evidence (best-shot crop, context frame) under pending names, store tracks + hits (+ the
caller's checkpoint and progress) in ONE transaction, then publish the evidence files.
``ArchiveJob`` (files) and the live daemon's camera workers both call
``TrackResults.commit``; there is no second pipeline.
"""

from __future__ import annotations

from ..decide import decide_track
from ..store.records import Checkpoint
from ..types import Track, TrackDecision, TrackIdentity
from .evidence import EvidenceWriter, TrackEvidence
from .persist import decisions_to_records
from .recognition import identify_tracks


class TrackResults:
    def __init__(self, cfg, repo, encoder, matcher, bands, evidence: EvidenceWriter):
        self.cfg = cfg
        self.repo = repo
        self.encoder = encoder
        self.matcher = matcher
        self.bands = bands
        self.evidence = evidence

    def decide(self, tracks: list[Track]) -> list[TrackDecision]:
        if not tracks:
            return []
        tcfg, dcfg = self.cfg.tracker, self.cfg.decision
        eligible = [t for t in tracks
                    if t.n_detections >= tcfg.min_detections and t.max_face_px >= dcfg.min_identify_px]
        identities = {i.track.track_id: i for i in identify_tracks(
            eligible, self.encoder, self.cfg.recognizer.batch_size)}
        decisions = []
        for track in tracks:
            identity = identities.get(track.track_id) or TrackIdentity(track, None, self.encoder.name, 0.0)
            matches = (self.matcher.match(track.track_id, identity.embedding)
                       if identity.embedding is not None else [])
            decisions.append(decide_track(identity, matches, self.bands, dcfg,
                                          min_detections=tcfg.min_detections))
        return decisions

    def commit(self, run_id: int, camera_id: int, tracks: list[Track],
               checkpoint: Checkpoint | None = None, progress: tuple[int, int] | None = None,
               update_existing: bool = False) -> list[TrackDecision]:
        """Decide ``tracks`` and store the results in one transaction, then publish their
        evidence files; returns every decision (too-short tracks included, though not stored)."""
        decisions = self.decide(tracks)
        kept = [d for d in decisions if d.status != "too_short"]
        evidence: dict[int, TrackEvidence] = {}
        try:
            for d in kept:
                track = d.identity.track
                evidence[track.track_id] = self.evidence.write_pending(run_id, track)
            records = decisions_to_records(kept, evidence)
            self.repo.save_track_results(run_id, camera_id, records, checkpoint=checkpoint,
                                         progress=progress, update_existing=update_existing)
        except Exception:
            self.evidence.discard_pending([f for e in evidence.values() for f in e.files])
            raise
        self.evidence.publish([f for e in evidence.values() for f in e.files])
        return decisions
