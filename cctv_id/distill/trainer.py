"""The student trainer: seeded, resumable, CSV-logged, CPU or CUDA (AMP on CUDA).

``train(recipe, out_dir)`` builds the training set (``data``), the student (compact, or the
teacher's own architecture initialised from the teacher), and optimises

    loss = w_emb * (1 - cos(student(LR chip), teacher(HR face)))      embedding distillation
           (the target optionally mixed with the person's centre: ``identity_mixed_targets``)
         + lambda * A-SKD attention similarity over paired blocks     (``attention``)
         + w_feat * (1 - cos) of one block's whole output, LR vs HR   (feature hint)
         + w_ce * CosFace on the training identities                  (no teacher; ablation)

Batches are drawn from a generator seeded by (seed, step), so a resumed run sees exactly the
batches an uninterrupted one would. ``out_dir`` receives ``recipe.json`` (the resolved recipe),
``split.json``, ``log.csv``, ``checkpoint.pt`` (model, optimiser, schedule, step, recipe
fingerprint) and at the end ``student.pt`` (fp16 weights plus everything needed to rebuild and
use the model: architecture, chip template, normalisation, teacher sha256, recipe).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, InputError
from .common import atomic_save, progress_counter, select_device, seed_all
from .recipe import Recipe

STUDENT_FORMAT = "cctv-id-student-v1"
VAL_KEYS = ("val_cos_12", "val_cos_16", "val_cos_24", "val_rank1_12", "val_rank1_16", "val_rank1_24")


def hr_lr_rank1(probes: np.ndarray, gallery: np.ndarray, labels: np.ndarray) -> float:
    """Rank-1 of each LR probe among the teacher's HR embeddings of the OTHER images (the
    probe's own image excluded): the validation figure that tracks hr-lr recognition."""
    sims = probes @ gallery.T
    np.fill_diagonal(sims, -np.inf)
    has_mate = np.array([(labels == lab).sum() > 1 for lab in labels])
    if not has_mate.any():
        return float("nan")
    best = sims.argmax(1)
    return float(np.mean(labels[best][has_mate] == labels[has_mate]))


@dataclass
class TrainResult:
    out_dir: Path
    weights: Path | None
    steps_done: int
    seconds: float
    final_val_cos: dict[str, float]


def build_student(recipe: Recipe, teacher=None):
    """The student module the recipe describes (compact, or dlib's architecture)."""
    from ..recognize.models.compact import CompactSpec, CompactStudent

    st = recipe.student
    if st.arch == "compact":
        if st.init == "teacher":
            raise ConfigError("student.init 'teacher' needs student.arch 'dlib' (the teacher's architecture)")
        spec = CompactSpec(st.input_size, tuple(st.widths), tuple(st.blocks), 128, st.dropout)
        if len(spec.widths) != len(spec.blocks):
            raise ConfigError("student.widths and student.blocks must have the same length")
        return CompactStudent(spec)
    if st.input_size < 96:
        raise ConfigError("student.arch 'dlib' needs student.input_size >= 96 (its strided stages)")
    from ..recognize.models.dlib_resnet_torch import DlibResNet

    model = DlibResNet(input_size=st.input_size)
    if st.init == "teacher":
        if teacher is None:
            from ..recognize.models.dlib_resnet_torch import load_teacher

            teacher = load_teacher()
        model.load_state_dict(teacher.state_dict())
    else:
        import torch

        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                torch.nn.init.kaiming_normal_(m.weight)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def hint_blocks(student_info, teacher_info, stage: int) -> tuple[int, ...]:
    """The block whose whole output the feature hint compares: the last block of ``stage``,
    which must have the same shape in student and teacher."""
    s_idx = [i for i, b in enumerate(student_info) if b[0] == stage]
    t_idx = [i for i, b in enumerate(teacher_info) if b[0] == stage]
    if not s_idx or not t_idx or s_idx[-1] != t_idx[-1] or student_info[s_idx[-1]] != teacher_info[t_idx[-1]]:
        raise ConfigError(f"loss.feature needs a student whose stage {stage} ends like the teacher's "
                          "(student.arch 'dlib' at the teacher's input size)")
    return (t_idx[-1],)


def freeze_late_stages(model, stage: int) -> None:
    """Freeze every block of ``stage`` and later, and the embedding head: only the early
    stages learn to read degraded faces, the teacher's identity layers stay as they are."""
    for block, (st, _, _) in zip(model.blocks, model.block_info):
        if st >= stage:
            for p in block.parameters():
                p.requires_grad_(False)
    head = getattr(model, "fc", None) or getattr(model, "head", None)
    for p in head.parameters():
        p.requires_grad_(False)


def student_align_spec(size: int):
    from ..recognize.dlib_resnet import DLIB_150

    return DLIB_150.scaled(size)


def _lr_factor(recipe: Recipe, step: int) -> float:
    o = recipe.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "cosine":
        t = (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
    if o.schedule == "steps":
        return 0.1 ** sum(step >= m for m in o.milestones)
    return 1.0


def _optimizer(recipe: Recipe, params):
    import torch

    o = recipe.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def identity_mixed_targets(embeddings: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
    """The embedding targets ``(V, N, 128)``: each face's own teacher embedding mixed with its
    person's centre (the normalised mean of the teacher's embeddings of all that person's
    faces, every view), ``normalise((1 - weight) * own + weight * centre)``. The centre is
    what the teacher sees of the person rather than of one photo's pose, light and
    expression; it stays in the teacher's space, so no new head or class weights are learnt."""
    if weight <= 0:
        return embeddings
    n_people = int(labels.max()) + 1
    sums = np.zeros((n_people, embeddings.shape[-1]), np.float64)
    np.add.at(sums, labels, embeddings.sum(axis=0).astype(np.float64))
    centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    mixed = (1.0 - weight) * embeddings + weight * centres[labels][None].astype(np.float32)
    mixed /= np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-12)
    return mixed.astype(np.float32)


def embedding_loss(student, teacher, mean, centered: bool):
    """``1 - cos(student, teacher)``, plus the same on vectors centred on the teacher's mean
    embedding when ``centered`` (dlib's embeddings share a large common component: without
    centring, matching it alone already gives a cosine of ~0.8)."""
    import torch.nn.functional as F

    s = F.normalize(student.float(), dim=1)
    loss = (1.0 - (s * teacher).sum(1)).mean()
    if centered:
        loss = loss + (1.0 - F.cosine_similarity(s - mean, teacher - mean, dim=1)).mean()
    return loss


def contrastive_loss(student, teacher, mean, temperature: float):
    """Label-free InfoNCE: each student embedding must pick its own teacher embedding among
    the batch's (centred cosines / temperature)."""
    import torch
    import torch.nn.functional as F

    s = F.normalize(F.normalize(student.float(), dim=1) - mean, dim=1)
    t = F.normalize(teacher - mean, dim=1)
    logits = s @ t.T / temperature
    return F.cross_entropy(logits, torch.arange(len(s), device=s.device))


def blend_with_teacher(state: dict, teacher_state: dict, blend: float) -> dict:
    """``(1 - blend) x state + blend x teacher_state`` for every floating-point tensor (the
    recipe's ``export.teacher_blend``); integer buffers are the student's."""
    if state.keys() != teacher_state.keys():
        raise ConfigError("export.teacher_blend: the student's tensors are not the teacher's")
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            t = teacher_state[k].to(device=v.device, dtype=v.dtype)
            out[k] = (1.0 - blend) * v + blend * t
        else:
            out[k] = v
    return out


def export_student(model, recipe: Recipe, teacher_sha: str, path: Path, extra: dict | None = None,
                   teacher=None) -> Path:
    """Write the deployable weights file (fp16 state_dict + metadata), blended with the
    teacher first when the recipe says so (``teacher`` is then needed)."""
    spec = student_align_spec(recipe.student.input_size)
    state = {k: v.detach().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    if recipe.export.teacher_blend > 0:
        if teacher is None:
            raise ConfigError("export.teacher_blend needs the teacher at export")
        state = blend_with_teacher(state, {k: v.detach().cpu() for k, v in teacher.state_dict().items()},
                                   recipe.export.teacher_blend)
    state = {k: (v.cpu().half() if v.is_floating_point() else v.cpu()) for k, v in state.items()}
    arch = {"arch": recipe.student.arch}
    if recipe.student.arch == "compact":
        arch["spec"] = model.spec.to_dict()
    else:
        arch["input_size"] = recipe.student.input_size
    payload = {
        "format": STUDENT_FORMAT,
        **arch,
        "state_dict": state,
        "align": {"size": spec.size, "template": spec.template.tolist(), "border": spec.border},
        "normalisation": "RGB, (pixel - (122.782, 117.001, 104.298)) / 256 (dlib's input layer)"
                         + ("" if recipe.student.input_norm == "none"
                            else f", after '{recipe.student.input_norm}' of the uint8 chip (cctv_id.recognize.input_norm)"),
        "input_norm": recipe.student.input_norm,
        "embedding_dim": 128,
        "teacher_sha256": teacher_sha,
        "recipe": recipe.resolved(),
        **(extra or {}),
    }
    return atomic_save(payload, path)


def train(
    recipe: Recipe,
    out_dir: str | Path,
    max_steps: int | None = None,
    restart: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    import torch
    import torch.nn.functional as F

    from ..recognize.input_norm import normalise_chips
    from ..recognize.models.dlib_resnet_torch import preprocess as preprocess_bgr
    from ..recognize.models.dlib_resnet_torch import load_teacher
    from .attention import askd_loss, cosine_distance, pair_blocks
    from .data import (
        annotate_samples,
        build_bank,
        compute_teacher_targets,
        fixed_probe_chips,
        list_images,
        split_people,
    )
    from .degrade import DegradeSettings
    from .heads import CosFace

    t_start = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    device = select_device(recipe.train.device)
    seed_all(recipe.seed)
    fingerprint = recipe.fingerprint()
    ckpt_path = out / "checkpoint.pt"
    checkpoint = None
    if ckpt_path.is_file() and not restart:
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint
            raise InputError(f"cannot read checkpoint {ckpt_path}: {exc}; use --restart") from None
        if checkpoint.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"checkpoint {ckpt_path} was trained with another recipe (fingerprint "
                f"{checkpoint.get('fingerprint')} != {fingerprint}); use --restart or another --out"
            )

    # ---------------------------------------------------------------- data
    root = recipe.data.root_path()
    split = split_people(root, recipe.data.sets, recipe.data.val_people, recipe.seed)
    if recipe.data.max_people:
        for parts in split.values():
            parts["train"] = parts["train"][: recipe.data.max_people]
            parts["val"] = parts["val"][: max(1, recipe.data.max_people // 4)] if parts["val"] else []
    (out / "split.json").write_text(json.dumps(split, indent=1))
    (out / "recipe.json").write_text(json.dumps(recipe.resolved(), indent=1))
    train_samples, val_samples = [], []
    for name, parts in split.items():
        train_samples += annotate_samples(root, name, list_images(root, name, parts["train"], recipe.data.max_images_per_person),
                                          progress=progress)
        if parts["val"]:
            val_samples += annotate_samples(root, name, list_images(root, name, parts["val"], recipe.data.max_images_per_person),
                                            progress=progress)
    if len(train_samples) < 2:
        raise InputError(f"no usable training faces under {root} for sets {recipe.data.sets}")
    people = sorted({(s.dataset, s.person) for s in train_samples})
    label_of = {p: i for i, p in enumerate(people)}
    labels = np.array([label_of[(s.dataset, s.person)] for s in train_samples], np.int64)
    log(f"training faces: {len(train_samples)} of {len(people)} people; validation: {len(val_samples)}")

    # ---------------------------------------------------------------- models
    from ..recognize.base import file_sha256
    from ..recognize.dlib_resnet import default_model_path

    teacher = load_teacher().eval()
    teacher_sha = file_sha256(default_model_path())
    model = build_student(recipe, teacher).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    use_att = recipe.loss.attention > 0
    # the pairs are computed (and their teacher maps cached) whether or not this recipe uses
    # them, so recipes that differ only in loss weights share one teacher cache
    pairs = pair_blocks(model.block_info, teacher.block_info, recipe.loss.attention_min_size)
    if use_att and not pairs:
        raise ConfigError("loss.attention > 0 but no student block pairs with a teacher block of at least "
                          f"{recipe.loss.attention_min_size} px")
    use_feat = recipe.loss.feature > 0
    feature_blocks: tuple[int, ...] = ()
    if use_feat:
        feature_blocks = hint_blocks(model.block_info, teacher.block_info, recipe.loss.feature_stage)
    need_teacher = recipe.loss.embedding > 0 or recipe.loss.contrastive > 0 or use_att or use_feat
    bar = None
    if need_teacher:
        log("teacher targets (cached after the first run) ...")
        targets = compute_teacher_targets(train_samples, teacher, teacher_sha, pairs, recipe.train.flip,
                                          progress=progress_counter("teacher", progress),
                                          feature_blocks=feature_blocks)
        val_targets = compute_teacher_targets(val_samples, teacher, teacher_sha, [], False) if val_samples else None
    else:
        targets = val_targets = None
    t_mean = (torch.from_numpy(targets.embeddings.reshape(-1, 128).mean(0)).to(device)
              if targets is not None else None)
    emb_targets = (identity_mixed_targets(targets.embeddings, labels, recipe.loss.identity_target)
                   if targets is not None else None)
    spec = student_align_spec(recipe.student.input_size)
    norm = recipe.student.input_norm
    settings = DegradeSettings(**{k: (tuple(v) if isinstance(v, list) else v)
                                  for k, v in recipe.degrade.model_dump().items()})
    log("degraded training chips (cached after the first run) ...")
    bank = build_bank(train_samples, spec, settings, recipe.data.variants_per_image, recipe.seed,
                      progress=progress_counter("degrade", progress))
    val_labels = np.array([f"{s.dataset}/{s.person}" for s in val_samples])
    val_chips = {px: fixed_probe_chips(val_samples, spec, px, recipe.seed) for px in (12, 16, 24)} if val_samples else {}
    teacher.to(device)

    if recipe.student.freeze_from_stage is not None:
        freeze_late_stages(model, recipe.student.freeze_from_stage)
    head = None
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.loss.classification > 0:
        head = CosFace(128, len(people), recipe.loss.cosface_scale, recipe.loss.cosface_margin, device=device)
        params = params + [head.weight]
    opt = _optimizer(recipe, params)
    start_step = 0
    earlier_seconds = 0.0  # wall time of the sessions before a resume
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint["model"])
            opt.load_state_dict(checkpoint["optimizer"])
            if head is not None:
                head.weight.data.copy_(checkpoint["head"].to(device))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"checkpoint {ckpt_path} does not fit this student: {str(exc).splitlines()[0]}; "
                              "use --restart") from None
        torch.set_rng_state(checkpoint["torch_rng"])
        start_step = int(checkpoint["step"])
        earlier_seconds = float(checkpoint.get("train_seconds", 0.0))
        log(f"resumed from step {start_step}")
    total = recipe.optim.steps
    end_step = total if max_steps is None else min(total, start_step + max_steps)
    amp = device.type == "cuda" and recipe.train.amp
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    log_path = out / "log.csv"
    new_log = not log_path.is_file() or checkpoint is None
    log_fh = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log_fh)
    if new_log:
        writer.writerow(["step", "lr", "loss", "embedding", "contrastive", "attention", "classification", "feature",
                         "images_per_s", *VAL_KEYS])

    def validate() -> dict[str, float]:
        if not val_chips or val_targets is None:
            return {}
        model.eval()
        res = {}
        with torch.inference_mode():
            for px, chips in val_chips.items():
                e = torch.cat([model(preprocess_bgr(normalise_chips(chips[s:s + 128], norm)).to(device)).float().cpu()
                               for s in range(0, len(chips), 128)])
                e = F.normalize(e, dim=1)
                t = torch.from_numpy(val_targets.embeddings[0])
                res[f"val_cos_{px}"] = float((e * t).sum(1).mean())
                res[f"val_rank1_{px}"] = hr_lr_rank1(e.numpy(), t.numpy(), val_labels)
        model.train()
        return res

    if progress:
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=start_step, desc=f"train {recipe.name}", unit="step", dynamic_ncols=True)
    model.train()
    teacher.eval()
    n, k_var = bank.shape[0], bank.shape[1]
    window_t, window_n = time.time(), 0
    val = {}
    step = start_step
    try:
        for step in range(start_step, end_step):
            rng = np.random.default_rng([recipe.seed, step])
            idx = rng.integers(0, n, recipe.optim.batch_size)
            var = rng.integers(0, k_var, recipe.optim.batch_size)
            flip = (rng.random(recipe.optim.batch_size) < 0.5) if recipe.train.flip else np.zeros(recipe.optim.batch_size, bool)
            chips = bank[idx, var]
            chips[flip] = chips[flip][:, :, ::-1]
            x = preprocess_bgr(normalise_chips(chips, norm)).to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.to(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = recipe.optim.lr * _lr_factor(recipe, step)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                if use_att or use_feat:
                    emb, maps = model.forward_with_maps(x)
                else:
                    emb, maps = model(x), None
            view = flip.astype(np.int64)
            parts = {"embedding": 0.0, "contrastive": 0.0, "attention": 0.0, "classification": 0.0, "feature": 0.0}
            loss = emb.new_zeros((), dtype=torch.float32)
            if recipe.loss.embedding > 0 or recipe.loss.contrastive > 0:
                t_emb = torch.from_numpy(emb_targets[view, idx]).to(device)
                l_emb = embedding_loss(emb, t_emb, t_mean, recipe.loss.centered)
                loss = loss + recipe.loss.embedding * l_emb
                parts["embedding"] = float(l_emb.detach())
                if recipe.loss.contrastive > 0:
                    l_con = contrastive_loss(emb, t_emb, t_mean, recipe.loss.temperature)
                    loss = loss + recipe.loss.contrastive * l_con
                    parts["contrastive"] = float(l_con.detach())
            if use_att:
                tt = []
                for i, _ in enumerate(pairs):
                    sp = torch.from_numpy(targets.spatial[i][view, idx].astype(np.float32)).to(device)
                    ch = targets.channel[i]
                    tt.append((sp, None if ch is None else torch.from_numpy(ch[view, idx].astype(np.float32)).to(device)))
                l_att = askd_loss(maps, tt, pairs, 1.0)
                loss = loss + recipe.loss.attention * l_att
                parts["attention"] = float(l_att.detach())
            if use_feat:
                l_feat = emb.new_zeros((), dtype=torch.float32)
                for i, b in enumerate(feature_blocks):
                    t_feat = torch.from_numpy(targets.features[i][view, idx].astype(np.float32)).to(device)
                    s_feat = maps[b].float().reshape(len(idx), -1)
                    l_feat = l_feat + cosine_distance(s_feat, t_feat).mean()
                loss = loss + recipe.loss.feature * l_feat
                parts["feature"] = float(l_feat.detach())
            if head is not None:
                y = torch.from_numpy(labels[idx]).to(device)
                l_ce = F.cross_entropy(head(emb, y), y)
                loss = loss + recipe.loss.classification * l_ce
                parts["classification"] = float(l_ce.detach())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if recipe.optim.grad_clip:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, recipe.optim.grad_clip)
            scaler.step(opt)
            scaler.update()
            window_n += len(idx)
            done = step + 1
            if done % recipe.train.val_every == 0 or done == end_step:
                val = validate()
            if done % recipe.train.log_every == 0 or done == end_step:
                rate = window_n / max(1e-9, time.time() - window_t)
                window_t, window_n = time.time(), 0
                writer.writerow([done, f"{opt.param_groups[0]['lr']:.6g}", f"{float(loss.detach()):.5f}",
                                 f"{parts['embedding']:.5f}", f"{parts['contrastive']:.5f}", f"{parts['attention']:.5f}",
                                 f"{parts['classification']:.5f}", f"{parts['feature']:.5f}", f"{rate:.1f}",
                                 *(f"{val[k]:.4f}" if k in val else "" for k in VAL_KEYS)])
                log_fh.flush()
                if bar is not None:
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}", img_s=f"{rate:.0f}",
                                    **{k[4:]: f"{v:.3f}" for k, v in val.items() if "rank1" in k})
            if done % recipe.train.checkpoint_every == 0 or done == end_step:
                _save_checkpoint(ckpt_path, model, opt, head, done, fingerprint,
                                 earlier_seconds + time.time() - t_start)

            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        log_fh.close()
    steps_done = end_step
    weights = None
    final_val = validate()
    if steps_done >= total:
        weights = export_student(model, recipe, teacher_sha, out / "student.pt",
                                 {"validation": final_val,
                                  "train_seconds": round(earlier_seconds + time.time() - t_start, 1)},
                                 teacher=teacher)
    return TrainResult(out, weights, steps_done, time.time() - t_start, final_val)


def _save_checkpoint(path: Path, model, opt, head, step: int, fingerprint: str, seconds: float) -> None:
    import torch

    atomic_save({
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "head": None if head is None else head.weight.detach().cpu(),
        "step": step,
        "fingerprint": fingerprint,
        "torch_rng": torch.get_rng_state(),
        "train_seconds": round(seconds, 1),
    }, path)
