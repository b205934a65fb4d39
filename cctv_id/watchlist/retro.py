"""Retro-matching: people enrolled after footage was processed are looked for among the
unknown tracks already stored, with the pipeline's own decision rule.

Owns the rule (:func:`choose_retro_hits`, pure numpy) and :func:`retro_match`, which runs it
inside ONE repository transaction (:meth:`Repository.record_retro_hits`) and returns the new
hits (origin "retro") as plain dicts.

The rule is :func:`cctv_id.decide.decide_track`'s, applied again to a stored track: every
person enrolled for the recogniser is scored (best cosine over their enrolments); the best
one is named if the score clears the threshold of the face-size band and beats the runner-up
by ``decision.margin``; and only if that best person is one of the people asked about.
A track therefore still names at most one person, as the pipeline does: tracks already
matched (a hit that is not rejected) are left alone. A (track, person) pair a reviewer
rejected is out of the race for that track. The band is chosen by the track's stored
``max_face_px`` (the per-sample sizes the pipeline weighs are not stored), and tracks below
``decision.min_identify_px`` are skipped.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..recognize.manifest import band_for


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def choose_retro_hits(cands, bands: Sequence, decision_cfg) -> list:
    """The retro hits the pipeline's rule gives for ``cands`` (a ``RetroCandidates``)."""
    from ..store.retro import RetroChoice

    if not len(cands.track_ids) or not len(cands.person_ids) or not cands.targets:
        return []
    people = sorted(set(int(p) for p in cands.person_ids))
    col = {p: i for i, p in enumerate(people)}
    sims = _unit(cands.vectors) @ _unit(cands.enrolments).T  # (N tracks, M enrolments)
    per_person = np.full((len(cands.track_ids), len(people)), -np.inf, np.float64)
    for j, pid in enumerate(cands.person_ids):
        c = col[int(pid)]
        per_person[:, c] = np.maximum(per_person[:, c], sims[:, j])
    out = []
    for i, track_id in enumerate(cands.track_ids):
        track_id = int(track_id)
        face_px = float(cands.max_face_px[i])
        if face_px < decision_cfg.min_identify_px:
            continue
        scores = per_person[i].copy()
        for p in people:
            if (track_id, p) in cands.rejected:
                scores[col[p]] = -np.inf
        order = np.argsort(-scores, kind="stable")
        best = int(order[0])
        if not np.isfinite(scores[best]):
            continue
        runner_up = float(scores[order[1]]) if len(order) > 1 and np.isfinite(scores[order[1]]) else -1.0
        threshold = float(band_for(face_px, list(bands)).threshold)
        score = float(scores[best])
        if people[best] in cands.targets and score >= threshold and score - runner_up >= decision_cfg.margin:
            out.append(RetroChoice(track_id, people[best], score, threshold))
    return out


def retro_match(repo, encoder_name: str, bands, decision_cfg, persons: list[str] | None,
                operator: str | None = None) -> list[dict]:
    """Look for ``persons`` (None or empty: everyone enrolled for ``encoder_name``) among the
    stored unknown tracks of that recogniser; store the hits found with origin "retro" in one
    transaction and return them (one dict per new hit, by track id). Idempotent: a second
    call finds those tracks matched and adds nothing.

    ``bands``: the thresholds per face-size band the pipeline uses (the CLI's
    ``app.bands(app.encoder())``); ``decision_cfg``: a ``DecisionConfig``. With ``operator``
    the call is written to the audit log ("retro-match": who was looked for, what was found).
    """
    hits = repo.record_retro_hits(encoder_name, list(persons or []),
                                  lambda cands: choose_retro_hits(cands, bands, decision_cfg))
    if operator is not None:
        repo.record_audit(operator, "retro-match",
                          params={"persons": sorted(persons or []), "model": encoder_name},
                          outcome={"n_hits": len(hits),
                                   "hits": [[h.get("track_id"), h.get("person")] for h in hits]})
    return hits
