"""The evaluation protocols; each returns a dict of figures (fractions, not percent).

Common rules (see DESIGN.md and the package notes):
- the gallery (high-resolution) side is embedded by ``recognizer.gallery`` at full size with
  the full-size landmarks; probes by ``recognizer.probe``, shrunk to face size ``size``
  (0: unchanged) and aligned with the landmarks of ``landmarks`` (``"full"`` or
  ``"detected"``, see ``features``);
- face size: dlib's HOG box height at full size; tight crops (Yale B, AT&T, TinyFace): the
  image height;
- identification ranks over gallery identities by cosine, an identity scoring its best
  image; a probe without a detection is a miss;
- ``alignment``: ``"template"`` (the pipeline's; default) or ``"dlib-chip"`` (dlib's own
  extractor); ``score``: ``"cosine"`` of unit embeddings (the pipeline's; default) or
  ``"euclidean"`` (minus the distance of raw descriptors, dlib's native metric). The data
  README's dlib anchors reproduce with ``dlib-chip`` + ``euclidean`` (see tests);
- every result carries ``size``, ``recognizer``, ``landmarks``, ``alignment``, ``score``, the
  counts, and the fall-back counts of ``annotate`` (``n_landmark_fallback``: images aligned
  with the mean layout).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .annotate import annotate, fallback_counts
from .datasets import (
    LabelledImage,
    PairsFile,
    parse_folds,
    read_att,
    read_pairs,
    read_tinyface,
    read_yaleb,
)
from .features import ALIGNMENTS, LANDMARK_MODES, embed_images
from .metrics import gallery_ranks, kfold_accuracy, rank_k, tar_at_far
from .recognizers import EvalRecognizer

FAR = 1e-3
SCORES = ("cosine", "euclidean")
UNSCORED = {"cosine": -1.0, "euclidean": -1e6}  # a pair with an undetected face: always rejected


def _check(size: float, landmarks: str, alignment: str = "template", score: str = "cosine") -> None:
    if landmarks not in LANDMARK_MODES:
        raise InputError(f"landmarks must be one of {', '.join(LANDMARK_MODES)}, got {landmarks!r}")
    if size < 0:
        raise InputError(f"size must be 0 (unchanged) or a face height in pixels, got {size}")
    if alignment not in ALIGNMENTS:
        raise InputError(f"alignment must be one of {', '.join(ALIGNMENTS)}, got {alignment!r}")
    if alignment == "dlib-chip" and landmarks != "full":
        raise InputError("the dlib-chip alignment uses dlib's points from the full-size image: "
                         "use it with landmarks 'full'")
    if score not in SCORES:
        raise InputError(f"score must be one of {', '.join(SCORES)}, got {score!r}")


def _header(protocol: str, size: float, recognizer: EvalRecognizer, landmarks: str,
            alignment: str, score: str) -> dict:
    return {"protocol": protocol, "size": size, "recognizer": recognizer.name, "landmarks": landmarks,
            "alignment": alignment, "score": score,
            **{k: v for k, v in recognizer.describe().items() if k != "recognizer"}}


def _rank_protocol(
    protocol: str,
    gallery: Sequence[LabelledImage],
    probes: Sequence[LabelledImage],
    size: float,
    recognizer: EvalRecognizer,
    landmarks: str,
    *,
    tight: bool,
    flip: bool = False,
    ks: Sequence[int] = (1, 5),
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    _check(size, landmarks, alignment, score)
    known = {g.identity for g in gallery if g.identity is not None}
    probes = list(probes)
    n_outside = sum(1 for p in probes if p.identity not in known)
    probes = [p for p in probes if p.identity in known]
    if not probes:
        raise InputError("no probe belongs to a person in the gallery")
    shared = {g.path.resolve() for g in gallery} & {p.path.resolve() for p in probes}
    if shared:
        raise InputError(f"{len(shared)} probe image(s) are also in the gallery, e.g. {sorted(shared)[0]}")
    ann = annotate([g.path for g in gallery] + [p.path for p in probes], tight, progress=progress)
    g_ann, p_ann = ann[: len(gallery)], ann[len(gallery):]
    opts = {"flip": flip, "alignment": alignment, "raw": score == "euclidean", "progress": progress}
    g = embed_images(recognizer.gallery, g_ann, 0, "full", desc="gallery", **opts)
    p = embed_images(recognizer.probe, p_ann, size, landmarks, desc="probes", **opts)
    # distractors (identity None) are each a candidate of their own
    g_labels = [x.identity if x.identity is not None else f"\0distractor:{i}" for i, x in enumerate(gallery)]
    ranks = gallery_ranks(p.vectors, [x.identity for x in probes], g.vectors, g_labels, valid=p.detected,
                          metric=score)
    out = _header(protocol, size, recognizer, landmarks, alignment, score)
    for k in ks:
        out[f"rank{k}"] = rank_k(ranks, k)
    out.update({
        "n_probes": len(probes),
        "n_gallery": len(gallery),
        "n_gallery_identities": len(known),
        "n_undetected": p.n_undetected,
        **fallback_counts(ann, alignment),
    })
    if n_outside:
        out["n_probes_without_gallery"] = n_outside
    return out


# ---------------------------------------------------------------- identification
def identification(
    gallery: Sequence[LabelledImage],
    probes: Sequence[LabelledImage],
    size: float,
    recognizer: EvalRecognizer,
    landmarks: str = "full",
    *,
    tight: bool = False,
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    """Closed-set identification: ``rank1``, ``rank5``, ``n_probes``, ``n_gallery``.

    Gallery at full size, probes shrunk to ``size``. Probes of people not in the gallery
    are left out (``n_probes_without_gallery``). ``tight``: images are face crops.
    """
    return _rank_protocol("identification", gallery, probes, size, recognizer, landmarks,
                          tight=tight, alignment=alignment, score=score, progress=progress)


# ---------------------------------------------------------------- verification
def verification(
    pairs: str | Path | PairsFile,
    images_dir: str | Path | None,
    size: float,
    mode: str,
    recognizer: EvalRecognizer,
    landmarks: str = "full",
    folds: str | Sequence[int] | None = None,
    *,
    people: Iterable[str] | None = None,
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    """LFW-style pair verification: ``accuracy``, ``std``, ``tar_at_far_1e-3``.

    ``mode`` ``"hr-lr"``: the first image of each pair at full size (gallery side), the second
    shrunk (probe side); ``"lr-lr"``: both shrunk (probe side). ``folds``: 1-based fold
    numbers or a spec like ``"1-3"`` (None: all). Accuracy is 10-fold style: each fold's
    threshold is chosen on the other selected folds (a single fold: on itself). TAR at FAR
    1e-3 pools the selected pairs. A pair with an undetected face scores -1 (cosine; the
    lowest possible). ``score="euclidean"``: minus the distance of raw descriptors.
    """
    _check(size, landmarks, alignment, score)
    if mode not in ("hr-lr", "lr-lr"):
        raise InputError(f"verification mode must be hr-lr or lr-lr, got {mode!r}")
    pf = pairs if isinstance(pairs, PairsFile) else read_pairs(pairs, images_dir)
    if isinstance(folds, str) or folds is None:
        chosen = parse_folds(folds, pf.n_folds)
    else:
        chosen = parse_folds(",".join(str(int(f)) for f in folds), pf.n_folds)
    selected = pf.select(chosen, people)
    if not selected:
        raise InputError("no pairs left after the fold / people selection")
    firsts = sorted({p.first for p in selected})
    seconds = sorted({p.second for p in selected})
    every = sorted(set(firsts) | set(seconds))
    ann = dict(zip(every, annotate(every, tight=False, progress=progress)))
    opts = {"alignment": alignment, "raw": score == "euclidean", "progress": progress}
    if mode == "hr-lr":
        a = embed_images(recognizer.gallery, [ann[x] for x in firsts], 0, "full", desc="first (HR)", **opts)
        b = embed_images(recognizer.probe, [ann[x] for x in seconds], size, landmarks, desc="second (LR)", **opts)
    else:
        a = embed_images(recognizer.probe, [ann[x] for x in firsts], size, landmarks, desc="first (LR)", **opts)
        b = embed_images(recognizer.probe, [ann[x] for x in seconds], size, landmarks, desc="second (LR)", **opts)
    ia = {x: i for i, x in enumerate(firsts)}
    ib = {x: i for i, x in enumerate(seconds)}
    rows_a = np.array([ia[p.first] for p in selected])
    rows_b = np.array([ib[p.second] for p in selected])
    va, vb = a.vectors[rows_a], b.vectors[rows_b]
    if score == "cosine":
        scores = (va * vb).sum(axis=1).astype(np.float64)
    else:
        scores = -np.linalg.norm(va - vb, axis=1).astype(np.float64)
    unscored = ~(a.detected[rows_a] & b.detected[rows_b])
    scores[unscored] = UNSCORED[score]
    same = np.array([p.same for p in selected])
    fold_ids = np.array([p.fold for p in selected])
    acc = kfold_accuracy(scores, same, fold_ids)
    tar, t_far = tar_at_far(scores, same, FAR)
    out = _header("verification", size, recognizer, landmarks, alignment, score)
    out.update({
        "mode": mode,
        "accuracy": acc["accuracy"],
        "std": acc["std"],
        "tar_at_far_1e-3": tar,
        "threshold_at_far_1e-3": t_far,
        "folds": sorted({int(f) + 1 for f in fold_ids}),
        "fold_accuracies": acc["fold_accuracies"],
        "fold_thresholds": acc["thresholds"],
        "threshold_from": acc["threshold_from"],
        "n_pairs": len(selected),
        "n_genuine": int(same.sum()),
        "n_impostor": int((~same).sum()),
        "n_images": len(every),
        "n_undetected": a.n_undetected + b.n_undetected,
        "n_pairs_unscored": int(unscored.sum()),
        **fallback_counts(list(ann.values()), alignment),
    })
    return out


# ---------------------------------------------------------------- Extended Yale B
def yaleb_hard_light(
    root: str | Path,
    size: float,
    recognizer: EvalRecognizer,
    landmarks: str = "full",
    people: Iterable[str] | None = None,
    *,
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    """Extended Yale B under hard light: reference = each person's ``A+000E+00`` image (full
    size), probes = images with |azimuth| > 70 deg or |elevation| > 40 deg, shrunk to
    ``size`` (face size = image height); rank-1 over the people given."""
    images = read_yaleb(root, people)
    refs = {im.identity: im for im in images if im.is_reference}
    missing = sorted({im.identity for im in images} - set(refs))
    if missing:
        raise InputError(f"Yale B: no reference image (A+000E+00) for {', '.join(missing[:5])}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    if len(refs) < 2:
        raise InputError(f"Yale B: {len(refs)} person(s) in {root}; identification needs at least 2")
    gallery = [LabelledImage(refs[k].path, k) for k in sorted(refs)]
    probes = [LabelledImage(im.path, im.identity) for im in images if im.is_hard_light]
    if not probes:
        raise InputError(f"Yale B: no hard-light images in {root}")
    out = _rank_protocol("yaleb-hard-light", gallery, probes, size, recognizer, landmarks, tight=True,
                         alignment=alignment, score=score, progress=progress)
    out["n_people"] = len(refs)
    return out


# ---------------------------------------------------------------- AT&T
def att(
    root: str | Path,
    size: float,
    recognizer: EvalRecognizer,
    landmarks: str = "full",
    people: Iterable[str] | None = None,
    *,
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    """AT&T (ORL), natively tiny (23x28): gallery = image 1 of each person, probes = the
    other nine; ``size`` 0 = native, else shrunk to that face height (= image height)."""
    persons = read_att(root, people)
    gallery, probes = [], []
    for name, paths in sorted(persons.items()):
        first = [p for p in paths if p.stem == "1"]
        if not first:
            raise InputError(f"AT&T: {name} has no image 1.pgm")
        gallery.append(LabelledImage(first[0], name))
        probes.extend(LabelledImage(p, name) for p in paths if p.stem != "1")
    out = _rank_protocol("att", gallery, probes, size, recognizer, landmarks, tight=True,
                         alignment=alignment, score=score, progress=progress)
    out["n_people"] = len(gallery)
    return out


# ---------------------------------------------------------------- TinyFace
def tinyface(
    root: str | Path,
    recognizer: EvalRecognizer,
    landmarks: str = "full",
    people: Iterable[str] | None = None,
    *,
    size: float = 0,
    alignment: str = "template",
    score: str = "cosine",
    progress: bool = False,
) -> dict:
    """TinyFace: probes vs Gallery_Match + Gallery_Distractor, rank-1/5/10/20, flip-averaged
    features (each face and its mirror), cosine. Images are used as they are (``size`` 0)."""
    layout = read_tinyface(root, people)
    gallery = list(layout.gallery_match) + list(layout.distractors)
    out = _rank_protocol("tinyface", gallery, layout.probes, size, recognizer, landmarks, tight=True,
                         flip=True, ks=(1, 5, 10, 20), alignment=alignment, score=score, progress=progress)
    out["n_distractors"] = len(layout.distractors)
    return out
