"""Evaluation data on disk -> typed records: identity folders, LFW pairs, folds, TinyFace,
Extended Yale B and AT&T layouts, people lists.

Every reader checks its input and raises ``InputError`` with one line that names the
problem (missing or unreadable folder, no images, a single person, malformed pairs file,
pairs naming missing images). Images themselves are decoded later (``annotate``), which
reports a corrupt image the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".bmp")


@dataclass(frozen=True)
class LabelledImage:
    """One image and the person in it (``identity`` None: a distractor, nobody known)."""

    path: Path
    identity: str | None


@dataclass(frozen=True)
class Pair:
    """One verification pair of ``pairs.txt``; ``fold`` is 0-based."""

    first: Path
    second: Path
    same: bool
    fold: int
    first_identity: str
    second_identity: str


@dataclass(frozen=True)
class PairsFile:
    n_folds: int
    per_fold: int  # matched pairs per fold (as many mismatched ones follow)
    pairs: tuple[Pair, ...]

    def select(self, folds: Sequence[int] | None = None, people: Iterable[str] | None = None) -> list[Pair]:
        """The pairs of the given 0-based ``folds`` (None: all) whose people are all in ``people``."""
        chosen = set(range(self.n_folds)) if folds is None else set(folds)
        keep = None if people is None else set(people)
        return [
            p for p in self.pairs
            if p.fold in chosen
            and (keep is None or (p.first_identity in keep and p.second_identity in keep))
        ]


@dataclass(frozen=True)
class TinyFaceLayout:
    """TinyFace's official test layout: probes against matches + distractors."""

    root: Path
    probes: tuple[LabelledImage, ...]
    gallery_match: tuple[LabelledImage, ...]
    distractors: tuple[LabelledImage, ...]  # identity None


# ---------------------------------------------------------------- helpers
def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _listdir(folder: Path, what: str) -> list[Path]:
    if not folder.exists():
        raise InputError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise InputError(f"{what} is not a folder: {folder}")
    try:
        return sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read {what} {folder}: {exc.strerror or exc}") from None


def _images_in(folder: Path, what: str) -> list[Path]:
    return [p for p in _listdir(folder, what) if _is_image(p)]


def apply_people(images: list[LabelledImage], people: Iterable[str] | None, where: Path) -> list[LabelledImage]:
    """``images`` restricted to ``people`` (None: all); an error when nobody is left."""
    if people is None:
        return images
    keep = set(people)
    out = [im for im in images if im.identity in keep]
    if not out:
        raise InputError(f"none of the {len(keep)} listed people are in {where}")
    return out


# ---------------------------------------------------------------- identity folders
def read_identity_folders(
    root: str | Path, people: Iterable[str] | None = None, min_people: int = 1, what: str = "image folder"
) -> list[LabelledImage]:
    """One sub-folder per person, images (jpg/png/pgm/bmp) inside; sorted by person then file.

    ``min_people``: fewer distinct people (after ``people``) is an ``InputError``.
    """
    root = Path(root)
    out: list[LabelledImage] = []
    for sub in _listdir(root, what):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        out.extend(LabelledImage(p, sub.name) for p in _images_in(sub, "person folder"))
    if not out:
        raise InputError(f"no images in {root} (expected one sub-folder of images per person)")
    out = apply_people(out, people, root)
    n = len({im.identity for im in out})
    if n < min_people:
        raise InputError(f"{root} holds {n} person(s); this protocol needs at least {min_people}")
    return out


def read_people_file(path: str | Path) -> list[str]:
    """Names, one per line; blank lines and ``#`` comments ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"people file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read people file {path}: {exc}") from None
    names = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise InputError(f"people file {path} lists nobody")
    return names


# ---------------------------------------------------------------- LFW pairs
def lfw_image_path(images_dir: Path, name: str, index: str) -> Path:
    return images_dir / name / f"{name}_{int(index):04d}.jpg"


def read_pairs(pairs_file: str | Path, images_dir: str | Path | None = None, check_images: bool = True) -> PairsFile:
    """LFW ``pairs.txt``: ``folds<TAB>per_fold``, then per fold ``per_fold`` matched lines
    (``name i j``) and ``per_fold`` mismatched lines (``name1 i name2 j``).

    Images are ``images_dir/<name>/<name>_<4-digit i>.jpg`` (``images_dir`` defaults to the
    pairs file's folder). ``check_images``: every named image must exist.
    """
    pairs_file = Path(pairs_file)
    images_dir = Path(images_dir) if images_dir is not None else pairs_file.parent
    try:
        lines = pairs_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"pairs file not found: {pairs_file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pairs file {pairs_file}: {exc}") from None
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise InputError(f"pairs file {pairs_file} is empty")
    head = lines[0].split()
    try:
        if len(head) == 1:  # the original LFW View 1 files have just a count: one fold
            n_folds, per_fold = 1, int(head[0])
        else:
            n_folds, per_fold = int(head[0]), int(head[1])
    except ValueError:
        raise InputError(f"{pairs_file}:1: expected 'folds<TAB>pairs_per_fold', got {lines[0]!r}") from None
    if n_folds < 1 or per_fold < 1 or len(head) > 2:
        raise InputError(f"{pairs_file}:1: expected 'folds<TAB>pairs_per_fold', got {lines[0]!r}")
    body = lines[1:]
    if len(body) != n_folds * per_fold * 2:
        raise InputError(
            f"{pairs_file}: header says {n_folds} folds x {per_fold} matched + {per_fold} mismatched "
            f"pairs = {n_folds * per_fold * 2} lines, found {len(body)}"
        )
    pairs: list[Pair] = []
    for k, line in enumerate(body):
        fields = line.split()
        fold, within = divmod(k, 2 * per_fold)
        matched_slot = within < per_fold
        lineno = k + 2
        try:
            if len(fields) == 3:
                name, i, j = fields
                pair = Pair(lfw_image_path(images_dir, name, i), lfw_image_path(images_dir, name, j),
                            True, fold, name, name)
            elif len(fields) == 4:
                n1, i, n2, j = fields
                pair = Pair(lfw_image_path(images_dir, n1, i), lfw_image_path(images_dir, n2, j),
                            False, fold, n1, n2)
            else:
                raise InputError(f"{pairs_file}:{lineno}: expected 3 or 4 fields, got {len(fields)}: {line!r}")
        except ValueError:
            raise InputError(f"{pairs_file}:{lineno}: image indices must be integers: {line!r}") from None
        if pair.same != matched_slot:
            kind = "matched" if matched_slot else "mismatched"
            raise InputError(f"{pairs_file}:{lineno}: fold {fold + 1} expects a {kind} pair here: {line!r}")
        pairs.append(pair)
    if check_images:
        if not images_dir.is_dir():
            raise InputError(f"images folder not found: {images_dir}")
        missing = sorted({str(p) for pr in pairs for p in (pr.first, pr.second) if not p.is_file()})
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InputError(f"{pairs_file} names images that do not exist: {missing[0]}{more}")
    return PairsFile(n_folds, per_fold, tuple(pairs))


def parse_folds(spec: str | None, n_folds: int) -> list[int] | None:
    """``"1-3"``, ``"2"``, ``"1,4,7-9"`` (1-based, as people count) -> sorted 0-based indices.

    None or empty: None (all folds). Out of range or malformed: ``InputError``.
    """
    if spec is None or not str(spec).strip():
        return None
    chosen: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise InputError(f"bad fold selection {spec!r}: use e.g. 1-3 or 1,4,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if lo > hi:
            raise InputError(f"bad fold range {part!r}: start after end")
        if lo < 1 or hi > n_folds:
            raise InputError(f"fold selection {spec!r} is outside 1-{n_folds}")
        chosen.update(range(lo - 1, hi))
    return sorted(chosen)


# ---------------------------------------------------------------- TinyFace
TINYFACE_FOLDERS = ("Probe", "Gallery_Match", "Gallery_Distractor")


def _tinyface_root(root: Path) -> Path:
    for candidate in (root, root / "Testing_Set", root / "tinyface" / "Testing_Set"):
        if (candidate / "Probe").is_dir() and (candidate / "Gallery_Match").is_dir():
            return candidate
    if not root.is_dir():
        raise InputError(f"TinyFace folder not found: {root}")
    raise InputError(f"{root} is not TinyFace's test layout (expected Probe/ and Gallery_Match/, "
                     "optionally Gallery_Distractor/, here or under Testing_Set/)")


def tinyface_identity(path: Path) -> str:
    """TinyFace names files ``<identity>_<n>.<ext>``: the prefix before the first underscore."""
    return path.stem.split("_", 1)[0]


def read_tinyface(root: str | Path, people: Iterable[str] | None = None) -> TinyFaceLayout:
    """TinyFace's ``Testing_Set``: ``Probe/``, ``Gallery_Match/``, ``Gallery_Distractor/``.

    ``people`` restricts probes and matches (distractors stay: they belong to nobody).
    """
    base = _tinyface_root(Path(root))
    probes = [LabelledImage(p, tinyface_identity(p)) for p in _images_in(base / "Probe", "TinyFace probe folder")]
    matches = [LabelledImage(p, tinyface_identity(p))
               for p in _images_in(base / "Gallery_Match", "TinyFace gallery folder")]
    dist_dir = base / "Gallery_Distractor"
    distractors = ([LabelledImage(p, None) for p in _images_in(dist_dir, "TinyFace distractor folder")]
                   if dist_dir.exists() else [])
    if not probes:
        raise InputError(f"no images in {base / 'Probe'}")
    if not matches:
        raise InputError(f"no images in {base / 'Gallery_Match'}")
    probes = apply_people(probes, people, base / "Probe")
    matches = apply_people(matches, people, base / "Gallery_Match")
    known = {m.identity for m in matches}
    if len(known) + (1 if distractors else 0) < 2:
        raise InputError(f"{base / 'Gallery_Match'} holds one person and there are no distractors: "
                         "ranking needs at least two candidates")
    if not any(p.identity in known for p in probes):
        raise InputError(f"no probe in {base / 'Probe'} has a match in {base / 'Gallery_Match'}")
    return TinyFaceLayout(base, tuple(probes), tuple(matches), tuple(distractors))


# ---------------------------------------------------------------- Extended Yale B
YALEB_NAME = re.compile(r"^(?P<person>.+?)_P(?P<pose>\d+)A(?P<az>[+-]\d+)E(?P<el>[+-]\d+)$")


@dataclass(frozen=True)
class YaleImage:
    path: Path
    identity: str
    azimuth: int
    elevation: int

    @property
    def is_reference(self) -> bool:
        return self.azimuth == 0 and self.elevation == 0

    @property
    def is_hard_light(self) -> bool:
        return abs(self.azimuth) > 70 or abs(self.elevation) > 40


def read_yaleb(root: str | Path, people: Iterable[str] | None = None) -> list[YaleImage]:
    """Extended Yale B (cropped): ``<person>/<person>_P00A+035E+15.png``; light from the name."""
    root = Path(root)
    out: list[YaleImage] = []
    for sub in _listdir(root, "Yale B folder"):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        for p in _images_in(sub, "Yale B person folder"):
            m = YALEB_NAME.match(p.stem)
            if m:
                out.append(YaleImage(p, sub.name, int(m.group("az")), int(m.group("el"))))
    if not out:
        raise InputError(f"no Yale B images in {root} (expected <person>/<person>_P00A+000E+00.png ...)")
    if people is not None:
        keep = set(people)
        out = [im for im in out if im.identity in keep]
        if not out:
            raise InputError(f"none of the {len(keep)} listed people are in {root}")
    return out


# ---------------------------------------------------------------- AT&T (ORL)
def read_att(root: str | Path, people: Iterable[str] | None = None) -> dict[str, list[Path]]:
    """AT&T faces: ``s<N>/<k>.pgm`` (k = 1..10) -> ``{person: [paths sorted by k]}``."""
    root = Path(root)
    out: dict[str, list[Path]] = {}
    for sub in _listdir(root, "AT&T folder"):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        imgs = [p for p in _images_in(sub, "AT&T person folder") if p.stem.isdigit()]
        if imgs:
            out[sub.name] = sorted(imgs, key=lambda p: int(p.stem))
    if not out:
        raise InputError(f"no AT&T images in {root} (expected s<N>/<k>.pgm)")
    if people is not None:
        keep = set(people)
        out = {k: v for k, v in out.items() if k in keep}
        if not out:
            raise InputError(f"none of the {len(keep)} listed people are in {root}")
    if len(out) < 2:
        raise InputError(f"{root} holds {len(out)} person(s); identification needs at least 2")
    return out
