"""``cctv-id eval ...``: the evaluation protocols (``cctv_id.evaluate``) from the command line.

Thin wrappers: read the options, build the evaluation recogniser, run one protocol, print
the figures (text, or one JSON object on stdout). Progress bars go to stderr. Heavy
imports happen inside the commands so ``cctv-id --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import math

import click

RECOGNIZER_NAMES = ("dlib", "dlib-torch", "student", "student-only")  # evaluate/recognizers.py


def _common(fn):
    """Options every protocol shares."""

    @click.option("--recognizer", "recognizer_name", type=click.Choice(RECOGNIZER_NAMES), default="student",
                  show_default=True,
                  help="dlib | dlib-torch (both sides) | student (gallery by dlib, probes by the "
                       "student) | student-only.")
    @click.option("--weights", type=click.Path(dir_okay=False), default=None,
                  help="Checkpoint for the recogniser (the student's probe side; both sides otherwise).")
    @click.option("--landmarks", type=click.Choice(["full", "detected"]), default="full", show_default=True,
                  help="full: RetinaFace on the full-size image; detected: the pipeline's detector "
                       "on the shrunk image.")
    @click.option("--alignment", type=click.Choice(["template", "dlib-chip"]), default="template",
                  show_default=True,
                  help="template: landmarks onto each encoder's chip template (the pipeline's); "
                       "dlib-chip: dlib's shape_predictor_5 + get_face_chip (how the README's dlib "
                       "anchors were measured; --landmarks full only).")
    @click.option("--score", type=click.Choice(["cosine", "euclidean"]), default="cosine", show_default=True,
                  help="cosine of unit embeddings (the pipeline's), or minus the Euclidean distance "
                       "of raw descriptors (dlib's native metric; the README's dlib anchors).")
    @click.option("--people", "people_file", type=click.Path(dir_okay=False), default=None,
                  help="Only these people (a file, one name per line).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
    @click.option("--progress/--no-progress", default=True, show_default=True,
                  help="Progress bars on stderr.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def _size_option(fn):
    return click.option("--size", type=click.FloatRange(min=0), default=0, show_default=True,
                        help="Face size in px that probes are shrunk to (0: unchanged).")(fn)


def _people(people_file):
    from ..evaluate.datasets import read_people_file

    return read_people_file(people_file) if people_file else None


def _recognizer(recognizer_name, weights):
    from ..evaluate.recognizers import build_recognizer

    return build_recognizer(recognizer_name, weights)


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f} %"


def _clean(value):
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _emit(result: dict, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(_clean(result), sort_keys=False))
        return
    size = result["size"]
    head = (f"{result['protocol']}: recogniser {result['recognizer']} "
            f"({result['gallery_model']} / {result['probe_model']}), landmarks {result['landmarks']}, "
            f"alignment {result['alignment']}, score {result['score']}, "
            f"size {'unchanged' if not size else f'{size:g} px'}")
    if "mode" in result:
        head += f", {result['mode']}, folds {','.join(str(f) for f in result['folds'])}"
    lines = [head]
    if "accuracy" in result:
        lines.append(f"  accuracy {_pct(result['accuracy'])} +- {100 * result['std']:.2f} "
                     f"(threshold from {result['threshold_from']})")
        lines.append(f"  TAR at FAR 1e-3 {_pct(result['tar_at_far_1e-3'])} "
                     f"({result['n_impostor']} impostor pairs)")
        lines.append(f"  pairs {result['n_pairs']} ({result['n_genuine']} genuine), images {result['n_images']}")
    else:
        ranks = [k for k in result if k.startswith("rank")]
        lines.append("  " + ", ".join(f"{k.replace('rank', 'rank-')} {_pct(result[k])}" for k in ranks))
        lines.append(f"  probes {result['n_probes']}, gallery {result['n_gallery']} images of "
                     f"{result['n_gallery_identities']} people"
                     + (f" + {result['n_distractors']} distractors" if result.get("n_distractors") else ""))
    notes = [f"{result['n_undetected']} undetected (counted as misses)"] if result["landmarks"] == "detected" else []
    if result.get("n_landmark_fallback"):
        notes.append(f"{result['n_landmark_fallback']} images aligned with fall-back landmarks ("
                     + ("mean layout: no RetinaFace face" if result["alignment"] == "template"
                        else "dlib's points found outside a HOG box") + ")")
    if result.get("n_face_px_fallback"):
        notes.append(f"{result['n_face_px_fallback']} images without a HOG box (face size estimated)")
    if result.get("n_probes_without_gallery"):
        notes.append(f"{result['n_probes_without_gallery']} probes of people not in the gallery left out")
    lines += [f"  note: {n}" for n in notes]
    click.echo("\n".join(lines))


@click.group("eval")
def eval_group():
    """Measure a recogniser on small faces (identification, verification, Yale B, AT&T, TinyFace,
    insightface .bin sets for the paper's iResNet checkpoints)."""


@eval_group.command("identification")
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False),
              help="Gallery: one sub-folder of images per person (used at full size).")
@click.option("--probes", "probes_dir", required=True, type=click.Path(file_okay=False),
              help="Probes: one sub-folder of images per person (shrunk to --size).")
@click.option("--tight", is_flag=True, help="Images are face crops: face size = image height.")
@_size_option
@_common
def identification_cmd(gallery_dir, probes_dir, tight, size, recognizer_name, weights, landmarks, alignment,
                       score, people_file, fmt, progress):
    """Closed-set identification: rank-1 / rank-5 of shrunk probes against a full-size gallery."""
    from ..evaluate.datasets import read_identity_folders
    from ..evaluate.protocols import identification

    people = _people(people_file)
    gallery = read_identity_folders(gallery_dir, people, min_people=2, what="gallery folder")
    probes = read_identity_folders(probes_dir, people, what="probe folder")
    rec = _recognizer(recognizer_name, weights)
    _emit(identification(gallery, probes, size, rec, landmarks, tight=tight, alignment=alignment, score=score,
                         progress=progress), fmt)


@eval_group.command("verification")
@click.option("--pairs", "pairs_file", required=True, type=click.Path(dir_okay=False),
              help="LFW-style pairs.txt.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of <name>/<name>_NNNN.jpg (default: the pairs file's folder).")
@click.option("--mode", type=click.Choice(["hr-lr", "lr-lr"]), default="hr-lr", show_default=True,
              help="hr-lr: only the second image of each pair is shrunk; lr-lr: both.")
@click.option("--folds", default=None, help="Folds to use, 1-based: 1-3, 1,4,7 (default: all).")
@_size_option
@_common
def verification_cmd(pairs_file, images_dir, mode, folds, size, recognizer_name, weights, landmarks, alignment,
                     score, people_file, fmt, progress):
    """Pair verification, 10-fold style (threshold from the other folds), TAR at FAR 1e-3."""
    from ..evaluate.datasets import parse_folds, read_pairs
    from ..evaluate.protocols import verification

    pf = read_pairs(pairs_file, images_dir)
    parse_folds(folds, pf.n_folds)  # a bad selection fails before any model loads
    people = _people(people_file)
    rec = _recognizer(recognizer_name, weights)
    _emit(verification(pf, None, size, mode, rec, landmarks, folds, people=people, alignment=alignment,
                       score=score, progress=progress), fmt)


@eval_group.command("yaleb")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="Extended Yale B, cropped: <person>/<person>_P00A+035E+15.png.")
@_size_option
@_common
def yaleb_cmd(data_dir, size, recognizer_name, weights, landmarks, alignment, score, people_file, fmt, progress):
    """Extended Yale B under hard light: rank-1 against one well-lit frontal image per person."""
    from ..evaluate.datasets import read_yaleb
    from ..evaluate.protocols import yaleb_hard_light

    read_yaleb(data_dir)  # bad data fails before any model loads
    people = _people(people_file)
    rec = _recognizer(recognizer_name, weights)
    _emit(yaleb_hard_light(data_dir, size, rec, landmarks, people, alignment=alignment, score=score,
                           progress=progress), fmt)


@eval_group.command("att")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="AT&T (ORL) faces: s<N>/<k>.pgm.")
@_size_option
@_common
def att_cmd(data_dir, size, recognizer_name, weights, landmarks, alignment, score, people_file, fmt, progress):
    """AT&T faces (natively 23x28): image 1 of each person as gallery, the other nine as probes."""
    from ..evaluate.datasets import read_att
    from ..evaluate.protocols import att

    read_att(data_dir)
    people = _people(people_file)
    rec = _recognizer(recognizer_name, weights)
    _emit(att(data_dir, size, rec, landmarks, people, alignment=alignment, score=score, progress=progress), fmt)


@eval_group.command("tinyface")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="TinyFace's Testing_Set (Probe/, Gallery_Match/, Gallery_Distractor/) or its parent.")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="A paper-trainer iResNet checkpoint (checkpoint.pt / best.pt) on both sides, "
                   "instead of --recognizer/--weights (ArcFace 112 template).")
@_common
def tinyface_cmd(data_dir, checkpoint, recognizer_name, weights, landmarks, alignment, score, people_file, fmt,
                 progress):
    """TinyFace: probes vs matches + distractors, rank-1/5/10/20, flip-averaged features."""
    from ..evaluate.datasets import read_tinyface
    from ..evaluate.protocols import tinyface

    read_tinyface(data_dir)
    people = _people(people_file)
    if checkpoint is not None:
        from ..distill.paper_eval import IResNetEncoder
        from ..evaluate.recognizers import EvalRecognizer

        if weights is not None:
            raise click.UsageError("--checkpoint and --weights are exclusive")
        encoder = IResNetEncoder(checkpoint)
        rec = EvalRecognizer("iresnet", encoder, encoder)
    else:
        rec = _recognizer(recognizer_name, weights)
    _emit(tinyface(data_dir, rec, landmarks, people, alignment=alignment, score=score, progress=progress), fmt)


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated pixel sizes such as 112,56,28,14, got {value!r}") from None
    if not sizes:
        raise click.BadParameter("no sizes given")
    return sizes


@eval_group.command("bin")
@click.option("--bin", "bins", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="insightface verification set (lfw.bin, agedb_30.bin, cfp_fp.bin ...); repeatable.")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False),
              help="A paper-trainer checkpoint (runs/<recipe>/best.pt or checkpoint.pt).")
@click.option("--sizes", default="112,56,28,14", show_default=True,
              help="LR face sizes in px (nearest down and up, the paper's blur); the model's input size "
                   "or more: full resolution.")
@click.option("--mode", type=click.Choice(["lr-lr", "hr-lr"]), default="lr-lr", show_default=True,
              help="lr-lr: both faces of a pair at the size; hr-lr: the first at full resolution.")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Add the embedding of the mirrored face (insightface's flip fusion).")
@click.option("--blur/--no-blur", default=None,
              help="The paper's blur on LR faces (default: as the checkpoint's recipe trained).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def bin_cmd(bins, checkpoint, sizes, mode, flip, blur, device, batch_size, fmt):
    """Pair verification on .bin sets at low resolution: 10-fold accuracy per size (the threshold
    of each fold chosen on the other nine), TAR at FAR 1e-3."""
    from ..distill.paper_eval import evaluate_bins

    result = evaluate_bins(checkpoint, bins, _sizes(sizes), mode, flip=flip, blur=blur, device=device,
                           batch_size=batch_size)
    if fmt == "json":
        click.echo(json.dumps(_clean(result)))
        return
    click.echo(f"{result['recipe'] or result['checkpoint']} ({result['arch']}, {result['input_size']} px input, "
               f"trained at {result['trained_lr_size']} px): {mode}, flip {'on' if flip else 'off'}, "
               f"blur {'on' if result['blur'] else 'off'}")
    for s in result["sets"]:
        for size, r in s["sizes"].items():
            label = "full" if int(size) >= result["input_size"] else f"{size} px"
            click.echo(f"  {s['name']:<10} {label:>7}: accuracy {_pct(r['accuracy'])} +- {100 * r['std']:.2f}, "
                       f"TAR at FAR 1e-3 {_pct(r['tar_at_far_1e-3'])} ({s['n_pairs']} pairs)")


COMMANDS = [eval_group]
