"""The paper trainer: A-SKD as "Teaching Where to Look" (ECCV 2022), iResNet + CBAM, at scale.

``train_paper(recipe, out_dir)`` trains what a ``PaperRecipe`` describes:

    loss = ce * CE(margin head logits of model(LR face))                 (ArcFace / CosFace)
         + lambda * sum over all blocks of (1 - cos) of CBAM's channel and spatial logits
                    between student(LR face) and the frozen, eval-mode teacher(HR face)

(``attention.cbam_askd_loss``; the logged ``attention`` column is the sum before lambda).
Without a teacher checkpoint the recipe trains a teacher (or an LR baseline) on CE alone.

SGD with the learning rate a pure function of the step (``lr_at``: warm-up, then x0.1 at each
epoch milestone; ``scheduler_step`` says whether an epoch counts when it ends, the standard,
or when it starts, as the authors' code steps ``MultiStepLR``). Devices: CPU or CUDA, AMP
(bf16, or fp16 with a GradScaler), channels_last, and DDP when started by ``torchrun`` (one
process per GPU, NCCL; gloo on the CPU; the global batch split over processes; rank 0 alone
logs and writes).

``out_dir`` receives ``recipe.json``, ``log.csv`` (step, epoch, lr, loss, ce, attention,
images/s; the losses of rank 0's share of the batch under DDP), ``val.csv``, ``checkpoint.pt``
(every ``checkpoint_every_steps``, at every epoch end and when the run stops; with the
optimiser, scaler and every process's RNG states, so a resumed run is bit-exact) and
``best.pt`` (model and head of the best mean validation accuracy; without validation sets, of
the last epoch). A checkpoint of another recipe or class count is refused with one line.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import ConfigError, InputError
from .common import atomic_save, rng_states, seed_all, select_device, set_rng_states
from .paper_recipe import PaperOptim, PaperRecipe

CHECKPOINT_FORMAT = "cctv-id-askd-paper-v1"
LOG_FIELDS = ["step", "epoch", "lr", "loss", "ce", "attention", "images_per_s"]


@dataclass
class PaperTrainResult:
    out_dir: Path
    checkpoint: Path
    best: Path | None
    steps_done: int
    total_steps: int
    seconds: float
    validation: dict[str, float] = field(default_factory=dict)  # the last one: set name -> accuracy, "mean"
    best_accuracy: float | None = None
    rank: int = 0

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.total_steps


def lr_at(optim: PaperOptim, step: int, steps_per_epoch: int) -> float:
    """The learning rate of (0-based) ``step``: ``lr * 0.1 ** (milestones passed)``, times the
    linear warm-up factor during the first ``warmup_steps``.

    ``epoch_end``: epoch ``e`` (0-based) is at the rate after ``e`` completed epochs, so with
    milestone 6 epochs 0..5 run at ``lr`` and epoch 6 at ``lr/10`` (MultiStepLR stepped after
    each epoch). ``epoch_start``: the authors' order (``scheduler.step()`` before each epoch),
    one epoch earlier: epoch 5 already runs at ``lr/10``.
    """
    epoch = step // steps_per_epoch
    counted = epoch + (1 if optim.scheduler_step == "epoch_start" else 0)
    factor = 0.1 ** sum(counted >= m for m in optim.milestones)
    if optim.warmup_steps and step < optim.warmup_steps:
        factor *= (step + 1) / optim.warmup_steps
    return optim.lr * factor


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    started: bool = False  # this call initialised the process group

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> tuple[_Dist, Any]:
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), select_device(device_name)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(device_name, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    d = _Dist(int(os.environ.get("RANK", "0")), world, local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        d.started = True
    return d, device


class MarginNet(torch.nn.Module):
    """Student (or teacher being trained) + margin head as one module, so DDP wraps both."""

    def __init__(self, model: torch.nn.Module, head: torch.nn.Module):
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor, labels: torch.Tensor, with_maps: bool):
        """``(margin logits (B, classes) in float32, CBAM maps or None)``."""
        emb, maps = self.model.forward_with_maps(x) if with_maps else (self.model(x), None)
        with torch.autocast(device_type=x.device.type, enabled=False):
            logits = self.head(emb.float(), labels)  # the margins in float32
        return logits, maps


def load_teacher(path: Path, recipe: PaperRecipe, device):
    """The frozen eval-mode teacher of a student recipe (its checkpoint's ``model`` section)."""
    from ..recognize.models.iresnet import build_iresnet
    from .paper_eval import strip_module_prefix

    if not path.is_file():
        raise InputError(f"teacher checkpoint not found: {path} (train the teacher first, e.g. "
                         "cctv-id train --recipe pipelines/distill/askd-casia-teacher.yaml)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise InputError(f"cannot read teacher checkpoint {path}: {exc}") from None
    state = ck.get("model") if isinstance(ck, dict) else None
    if not isinstance(state, dict):
        raise InputError(f"teacher checkpoint {path} has no 'model' section")
    m = recipe.model
    teacher = build_iresnet(m.arch, cbam=m.cbam, embedding_size=m.embedding_size, input_size=m.input_size,
                            dropout=m.dropout)
    try:
        teacher.load_state_dict(strip_module_prefix(state))
    except RuntimeError as exc:
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip() and "Error(s)" not in ln), str(exc))
        raise ConfigError(f"teacher checkpoint {path} does not fit model {m.arch} (cbam {m.cbam}, "
                          f"{m.input_size} px, embedding {m.embedding_size}): {first}") from None
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(device).eval()


def amp_dtype_of(amp: str):
    """``"off" | "bf16" | "fp16"`` -> the autocast dtype (None: no autocast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def forward_loss(net, teacher, x, hr, labels, ce_weight: float, attention_weight: float, amp_dtype=None):
    """One batch's ``(loss, ce, attention)``: ``net`` (student or teacher being trained, with
    its head) on ``x``; with a ``teacher``, the A-SKD term against its maps of ``hr``
    (``attention`` is the sum before its weight; None without a teacher)."""
    import torch.nn.functional as F

    from .attention import cbam_askd_loss

    with torch.autocast(device_type=x.device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        logits, maps = net(x, labels, teacher is not None)
        ce = F.cross_entropy(logits, labels)
        loss = ce_weight * ce
        att = None
        if teacher is not None:
            with torch.no_grad():
                _, t_maps = teacher.forward_with_maps(hr)
            att = cbam_askd_loss(maps, t_maps, 1.0)
            loss = loss + attention_weight * att
    return loss, ce, att


def optimise(loss, opt, scaler, params, grad_clip: float | None) -> None:
    """Backward (scaled for fp16), optional gradient-norm clipping, optimiser step."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()


def _trim_csv(path: Path, fields: list[str], upto: int | None) -> Any:
    """Open ``path`` for appending rows, keeping only rows with step <= ``upto`` (None: new file)."""
    rows = []
    if upto is not None and path.is_file():
        with open(path, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("step", "").isdigit() and int(r["step"]) <= upto]
    fh = open(path, "w", newline="")
    writer = csv.DictWriter(fh, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: r.get(k, "") for k in fields} for r in rows)
    fh.flush()
    return fh, writer


def train_paper(
    recipe: PaperRecipe,
    out_dir: str | Path,
    max_steps: int | None = None,
    restart: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> PaperTrainResult:
    t_start = time.time()
    dist_info, device = _init_distributed(recipe.train.device)
    try:
        return _train(recipe, Path(out_dir), max_steps, restart, progress, log, dist_info, device, t_start)
    finally:
        if dist_info.started:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(recipe: PaperRecipe, out: Path, max_steps, restart, progress, log, dd: _Dist, device,
           t_start: float) -> PaperTrainResult:
    from ..recognize.models.iresnet import build_iresnet
    from .heads import build_head
    from .paper_data import EpochBatches, FlippedFaces, make_loader, open_faces
    from .paper_eval import Validator

    say = log if dd.main else (lambda _m: None)
    tr, opt_cfg, m = recipe.train, recipe.optim, recipe.model
    if tr.amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp fp16 needs CUDA (use bf16 or off on the CPU)")
    if opt_cfg.batch_size % dd.world:
        raise ConfigError(f"optim.batch_size {opt_cfg.batch_size} does not split over {dd.world} processes")
    if tr.threads:
        torch.set_num_threads(tr.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not tr.deterministic
        if tr.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)  # warns on an op without one
    fingerprint = recipe.fingerprint()
    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    checkpoint = None
    if ckpt_path.is_file() and not restart:
        try:
            checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"cannot read checkpoint {ckpt_path}: {why}; use --restart") from None
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ConfigError(f"{ckpt_path} is not a checkpoint of the paper trainer; use --restart or another --out")
        if checkpoint.get("fingerprint") != fingerprint:
            raise ConfigError(f"checkpoint {ckpt_path} was trained with another recipe (fingerprint "
                              f"{checkpoint.get('fingerprint')} != {fingerprint}); use --restart or another --out")
        if checkpoint.get("world_size") != dd.world:
            raise ConfigError(f"checkpoint {ckpt_path} was trained by {checkpoint.get('world_size')} processes, "
                              f"this run has {dd.world}: resume with the same number (or --restart)")

    # ---------------------------------------------------------------- data, models
    seed_all(recipe.seed)
    model = build_iresnet(m.arch, cbam=m.cbam, embedding_size=m.embedding_size, input_size=m.input_size,
                          dropout=m.dropout)
    root = recipe.data.root_path()
    faces = open_faces(root)
    validator = Validator(recipe, device) if dd.main else None  # missing .bin files fail here
    if checkpoint is not None and checkpoint.get("num_classes") != faces.num_classes:
        raise ConfigError(f"checkpoint {ckpt_path} was trained on {checkpoint.get('num_classes')} classes but "
                          f"{root} has {faces.num_classes}; use --restart or another --out")
    per_rank = opt_cfg.batch_size // dd.world
    batches = EpochBatches(len(faces), per_rank, recipe.seed, dd.rank, dd.world, limit=recipe.data.max_images)
    spe = len(batches)
    if spe < 1:
        raise InputError(f"{batches.n} training faces under {root} do not fill one batch of {opt_cfg.batch_size}")
    total = opt_cfg.epochs * spe if opt_cfg.total_steps is None else min(opt_cfg.epochs * spe, opt_cfg.total_steps)
    if checkpoint is not None and checkpoint.get("steps_per_epoch") != spe:
        raise ConfigError(f"checkpoint {ckpt_path} has {checkpoint.get('steps_per_epoch')} steps per epoch, "
                          f"the data now gives {spe}; use --restart or another --out")
    head = build_head(recipe.head.name, m.embedding_size, faces.num_classes, recipe.head.s, recipe.head.m)
    teacher = load_teacher(recipe.teacher.path(), recipe, device) if recipe.is_student else None
    memory = torch.channels_last if tr.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory)
    head.to(device)
    if teacher is not None:
        teacher.to(memory_format=memory)
    net = MarginNet(model, head)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=opt_cfg.lr, momentum=opt_cfg.momentum, nesterov=opt_cfg.nesterov,
                          weight_decay=opt_cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=tr.amp == "fp16")
    start, best_acc, val = 0, None, {}
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint["model"])
            head.load_state_dict(checkpoint["head"])
            opt.load_state_dict(checkpoint["optimizer"])
            scaler.load_state_dict(checkpoint["scaler"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"checkpoint {ckpt_path} does not fit this model: {str(exc).splitlines()[0]}; "
                              "use --restart") from None
        start, best_acc = int(checkpoint["step"]), checkpoint.get("best_accuracy")
        val = checkpoint.get("validation", {})
        set_rng_states(checkpoint["rng"][dd.rank])
        say(f"resumed from step {start} (epoch {start // spe + 1}, batch {start % spe} of {spe})")
    elif dd.world > 1:
        seed_all(recipe.seed * 1000 + dd.rank + 1)  # one dropout stream per process
    if dd.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    end = total if max_steps is None else min(total, start + max_steps)
    items = FlippedFaces(faces, m.input_size)
    loader = make_loader(items, batches, recipe.lr_image.size, recipe.lr_image.blur, recipe.data.num_workers,
                         device.type == "cuda", recipe.seed)
    say(f"{recipe.name}: {batches.n} faces of {faces.num_classes} identities, {spe} steps per epoch, "
        f"{total} steps; {'student of ' + str(recipe.teacher.path()) if teacher is not None else 'no teacher'}; "
        f"{device}{f' x {dd.world} processes' if dd.world > 1 else ''}, amp {tr.amp}")

    log_fh = val_fh = None
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)
        if restart and best_path.is_file():
            best_path.unlink()  # the old run's
        (out / "recipe.json").write_text(recipe.model_dump_json(indent=1))
        log_fh, writer = _trim_csv(out / "log.csv", LOG_FIELDS, start if checkpoint is not None else None)
        val_fields = ["step", "epoch", *validator.names, "mean"]
        val_fh, val_writer = _trim_csv(out / "val.csv", val_fields, start if checkpoint is not None else None)

    def save(step: int) -> None:
        states = rng_states()
        if dd.world > 1:
            import torch.distributed as dist

            gathered: list = [None] * dd.world
            dist.all_gather_object(gathered, states)
        else:
            gathered = [states]
        if dd.main:
            atomic_save({
                "format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "recipe": recipe.resolved(),
                "num_classes": faces.num_classes, "world_size": dd.world, "steps_per_epoch": spe,
                "step": step, "epoch": step // spe, "batch_in_epoch": step % spe,
                "model": model.state_dict(), "head": head.state_dict(), "optimizer": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "scheduler": {"rule": "lr_at", "step": step, "lr": lr_at(opt_cfg, step, spe)},
                "rng": gathered, "best_accuracy": best_acc, "validation": val,
            }, ckpt_path)

    def save_best(step: int) -> None:
        atomic_save({"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "recipe": recipe.resolved(),
                     "num_classes": faces.num_classes, "step": step, "epoch": step // spe,
                     "model": model.state_dict(), "head": head.state_dict(), "validation": val}, best_path)

    bar = None
    if progress and dd.main:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=start, desc=f"train {recipe.name}", unit="step", dynamic_ncols=True)
    full_res = recipe.lr_image.size >= m.input_size  # the model sees the faces as they are
    amp_dtype = amp_dtype_of(tr.amp)
    net.train()
    window_t, window_n = time.time(), 0
    step = start
    try:
        while step < end:
            batches.set_epoch(step // spe, step % spe)
            for hr, lr_img, labels in loader:
                hr = hr.to(device, non_blocking=True).contiguous(memory_format=memory)
                x = hr if full_res else lr_img.to(device, non_blocking=True).contiguous(memory_format=memory)
                labels = labels.to(device, non_blocking=True)
                lr_now = lr_at(opt_cfg, step, spe)
                for g in opt.param_groups:
                    g["lr"] = lr_now
                loss, ce, att = forward_loss(net, teacher, x, hr, labels, recipe.loss.ce, recipe.loss.attention,
                                             amp_dtype)
                optimise(loss, opt, scaler, params, opt_cfg.grad_clip)
                step += 1
                window_n += len(labels) * dd.world
                epoch_done = step % spe == 0
                if dd.main and (step % tr.log_every_steps == 0 or step == end):
                    rate = window_n / max(1e-9, time.time() - window_t)
                    window_t, window_n = time.time(), 0
                    row = {"step": step, "epoch": (step - 1) // spe + 1, "lr": f"{lr_now:.6g}",
                           "loss": f"{float(loss.detach()):.6f}", "ce": f"{float(ce.detach()):.6f}",
                           "attention": f"{float(att.detach()):.6f}" if att is not None else "",
                           "images_per_s": f"{rate:.1f}"}
                    writer.writerow(row)
                    log_fh.flush()
                    if bar is not None:
                        bar.set_postfix(loss=row["loss"][:6], lr=row["lr"], img_s=f"{rate:.0f}")
                if (epoch_done and (step // spe) % tr.val_every_epochs == 0) or step == total:
                    if dd.main:
                        val = validator.run(model) if validator.names else {}
                        acc = val.get("mean")
                        if validator.names:
                            val_writer.writerow({"step": step, "epoch": (step - 1) // spe + 1,
                                                 **{k: f"{v:.5f}" for k, v in val.items()}})
                            val_fh.flush()
                            say(f"step {step}: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in val.items()))
                        if acc is None or best_acc is None or acc > best_acc:
                            best_acc = acc if acc is not None else best_acc
                            save_best(step)
                    _barrier(dd)
                if step % tr.checkpoint_every_steps == 0 or epoch_done or step == end:
                    save(step)
                    _barrier(dd)
                if bar is not None:
                    bar.update(1)
                if step >= end:
                    break
    finally:
        if bar is not None:
            bar.close()
        for fh in (log_fh, val_fh):
            if fh is not None:
                fh.close()
    return PaperTrainResult(out, ckpt_path, best_path if best_path.is_file() else None, step, total,
                            time.time() - t_start, val, best_acc, dd.rank)


def _barrier(dd: _Dist) -> None:
    if dd.world > 1:
        import torch.distributed as dist

        dist.barrier()

