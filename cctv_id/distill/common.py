"""Helpers both trainers share (the dlib-student ``trainer`` and the paper's ``paper_trainer``).

Owns: device selection from a recipe's ``train.device``, seeding of the three random number
generators, atomic ``torch.save``, tqdm counters for preprocessing passes, and the one-line
rendering of a pydantic validation error (unknown keys named). Nothing here knows a recipe's
schema beyond these few fields.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError


def select_device(name: str, local_rank: int | None = None):
    """``"auto" | "cpu" | "cuda"`` -> a ``torch.device`` (``cuda:<local_rank>`` under torchrun).

    ``cuda`` without a GPU is a ``ConfigError``; ``auto`` falls back to the CPU.
    """
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("recipe asks for CUDA but no GPU is available")
        return torch.device("cuda", local_rank or 0) if local_rank is not None else torch.device("cuda")
    return torch.device("cpu")


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (CUDA's too, through torch)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    """The global generators' states (Python, NumPy, torch CPU and every CUDA device)."""
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what ``rng_states`` returned."""
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def atomic_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary name, then rename: a crash never leaves half a file."""
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def progress_counter(desc: str, enabled: bool) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback drawing a tqdm bar (None when disabled)."""
    if not enabled:
        return None
    state: dict = {}

    def update(done: int, total: int) -> None:
        from tqdm import tqdm

        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True)
        bar = state["bar"]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def validation_message(exc: Any) -> str:
    """A pydantic ``ValidationError`` as one line: ``unknown key 'a.b'; c: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"unknown key '{loc}'" if err["type"] == "extra_forbidden" else f"{loc}: {msg}")
    return "; ".join(parts)
