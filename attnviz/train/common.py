"""The training loop shared by attnviz's tiny ViTs, and writing their weights with a JSON description."""
from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from attnviz.models.tiny_vit import TinyViT, TinyViTConfig

log = logging.getLogger(__name__)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def seed_everything(seed: int, threads: int = 2) -> torch.Generator:
    """Seed Python, NumPy and torch, fix the thread count, prefer deterministic kernels; return a torch generator."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Accuracy of ``model`` on ``x`` ``[N, C, H, W]`` with labels ``y`` ``[N]``."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
    return correct / len(x)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
                     lr: float, generator: torch.Generator, weight_decay: float = 0.05,
                     label_smoothing: float = 0.0, warmup_steps: int = 200, augment: Augment | None = None,
                     x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None) -> list[dict]:
    """AdamW with linear warm-up then cosine decay; returns one log record per epoch.

    Args:
        x: float32 ``[N, C, H, W]`` (normalised); y: int64 ``[N]``.
        augment: ``f(batch, generator) -> batch`` applied to each training batch.
    """
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total - warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    history = []
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        running = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, generator)
            loss = loss_fn(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * len(idx)
        record = {"epoch": epoch + 1, "loss": running / len(x), "seconds": time.perf_counter() - t0}
        if x_test is not None and y_test is not None:
            record["test_accuracy"] = evaluate(model, x_test, y_test)
        log.info("epoch %(epoch)d: loss %(loss).4f, %(seconds).1f s, test accuracy %(test_accuracy).4f",
                 {"test_accuracy": float("nan"), **record})
        history.append(record)
    model.eval()
    return history


def save_model(model: TinyViT, stem: Path, meta: dict) -> tuple[Path, Path]:
    """Write ``{stem}.safetensors`` (weights) and ``{stem}.json`` (``config`` plus ``meta``)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights, info = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(weights),
              metadata={"format": "pt", "model": "attnviz TinyViT"})
    weights.chmod(0o644)
    info.write_text(json.dumps({"config": model.cfg.to_dict(), **meta}, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s and %s", weights, info)
    return weights, info


def new_model(cfg: TinyViTConfig) -> TinyViT:
    model = TinyViT(cfg)
    log.info("TinyViT %s: %d parameters", cfg, sum(p.numel() for p in model.parameters()))
    return model
