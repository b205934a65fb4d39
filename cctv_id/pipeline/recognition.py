"""Recognition stage: align the best samples of finished tracks, embed them in batches
across tracks, and aggregate one quality-weighted embedding per track."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..align import align_faces
from ..decide import representative_face_px
from ..recognize.aggregate import aggregate
from ..types import FaceCrops, Track, TrackIdentity


def crops_for_tracks(tracks: Sequence[Track], spec) -> tuple[FaceCrops, list[int]]:
    """Aligned chips of every best sample of ``tracks`` and, per chip, its track's position."""
    chips, face_px, quality, owners = [], [], [], []
    for pos, track in enumerate(tracks):
        for sample in track.best:
            chip = align_faces(sample.patch, sample.patch_landmarks[None], spec)[0]
            chips.append(chip)
            face_px.append(sample.face_px)
            quality.append(sample.quality)
            owners.append(pos)
    size = spec.size
    images = np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8)
    crops = FaceCrops(
        images=images,
        face_px=np.asarray(face_px, np.float32),
        quality=np.asarray(quality, np.float32),
        track_ids=np.asarray([tracks[o].track_id for o in owners], np.int64),
    )
    return crops, owners


def identify_tracks(tracks: Sequence[Track], encoder, batch_size: int = 16) -> list[TrackIdentity]:
    """One ``TrackIdentity`` per track, in order; tracks without samples get no embedding.

    An encoder that routes by face size (``encoder_for``, see ``recognize.routed``) embeds
    each track with the recogniser for its representative face size, in one batch per
    recogniser.
    """
    if not tracks:
        return []
    if hasattr(encoder, "encoder_for"):
        groups: dict[int, list[int]] = {}
        chosen = {}
        for pos, track in enumerate(tracks):
            px = representative_face_px(TrackIdentity(track, None, encoder.name, 0.0))
            sub = encoder.encoder_for(px)
            chosen[id(sub)] = sub
            groups.setdefault(id(sub), []).append(pos)
        out: list[TrackIdentity | None] = [None] * len(tracks)
        for key, positions in groups.items():
            sub = chosen[key]
            size = batch_size if sub is encoder.large else max(batch_size, sub.batch_size)
            for pos, ident in zip(positions, _identify(
                    [tracks[p] for p in positions], sub, size)):
                out[pos] = TrackIdentity(ident.track, ident.embedding, encoder.name, ident.quality)
        return out  # type: ignore[return-value]
    return _identify(tracks, encoder, batch_size)


def _identify(tracks: Sequence[Track], encoder, batch_size: int) -> list[TrackIdentity]:
    crops, owners = crops_for_tracks(tracks, encoder.align_spec)
    vectors = []
    for start in range(0, len(crops), batch_size):
        part = FaceCrops(
            crops.images[start:start + batch_size],
            crops.face_px[start:start + batch_size],
            crops.quality[start:start + batch_size],
            crops.track_ids[start:start + batch_size],
        )
        vectors.append(encoder.embed(part).vectors)
    all_vectors = np.concatenate(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    owners_arr = np.asarray(owners, np.int64)
    out = []
    for pos, track in enumerate(tracks):
        rows = np.nonzero(owners_arr == pos)[0]
        if len(rows) == 0:
            out.append(TrackIdentity(track, None, encoder.name, 0.0))
            continue
        weights = crops.quality[rows]
        emb = aggregate(all_vectors[rows], weights)
        out.append(TrackIdentity(track, emb, encoder.name, float(weights.max())))
    return out
