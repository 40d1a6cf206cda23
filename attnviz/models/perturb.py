"""The target's probability on perturbed inputs: the model side of deletion and insertion curves
(:mod:`attnviz.analysis.faithfulness` builds the masks and measures the curves).

How a unit is removed:

* an image patch: its pixels are set to the normalisation mean (0 after normalising: the input carries nothing
  there, the usual neutral value of perturbation tests): grey 0.29, the mean pixel of Fashion-MNIST, for
  vit-fashion; grey 0.5 for shapes-vit. All of the patch's pixels are replaced, so vit-fashion's convolutional stem,
  which also sees a little of the neighbouring patches, gets the same grey.
* a prompt token of a causal LM: it is dropped, and the tokens after it move up. A language model has no neutral
  token: SmolLM2 never saw a mask token, a space or a padding token is text itself, and ``<|endoftext|>`` starts a new
  document; a shorter prompt is input of the kind the model was trained on. The last token (the position that
  predicts) is always kept: the units are the tokens before it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from attnviz.models.hf_text import HFTextModel
    from attnviz.models.tiny_image import TinyViTImageModel

IMAGE_BATCH = 256
"""Perturbed images per forward pass."""
TEXT_BATCH = 32
"""Perturbed prompts per forward pass."""
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` (inputs run so far, of all) after each forward pass."""


@torch.inference_mode()
def image_probabilities(model: TinyViTImageModel, pixels: torch.Tensor, present: np.ndarray, target: int,
                        progress: Progress | None = None) -> np.ndarray:
    """The probability of class ``target`` for each pattern of present patches.

    Args:
        pixels: ``[1, channels, size, size]`` the normalised input (:meth:`TinyViTImageModel.inputs`).
        present: bool ``[step, unit]`` over the ``rows * cols`` patches, row-major; False = removed.
        target: class index.
    Returns:
        ``[step]`` float64.
    """
    rows, cols = model.grid
    p = model.cfg.patch_size
    keep = torch.from_numpy(np.asarray(present, bool).reshape(-1, 1, rows, cols))
    keep = keep.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)  # [step, 1, size, size]
    out = []
    for i in range(0, len(keep), IMAGE_BATCH):
        batch = pixels * keep[i:i + IMAGE_BATCH]  # removed pixels -> 0, the normalisation mean
        out.append(torch.softmax(model.model(batch).float(), -1)[:, target])
        if progress is not None:
            progress(min(i + IMAGE_BATCH, len(keep)), len(keep))
    return torch.cat(out).double().numpy()


@torch.inference_mode()
def text_probabilities(model: HFTextModel, ids: list[int], present: np.ndarray, target: int,
                       progress: Progress | None = None) -> np.ndarray:
    """The probability of the next token ``target`` for each pattern of present prompt tokens.

    Args:
        ids: the prompt's token ids; the last one predicts and is always kept.
        present: bool ``[step, unit]`` over ``ids[:-1]``; False = dropped.
        target: token id.
    Returns:
        ``[step]`` float64.
    """
    context, last = np.asarray(ids[:-1]), int(ids[-1])
    seqs = [context[m].tolist() + [last] for m in np.asarray(present, bool)]
    base, head = model.model.base_model, model.model.get_output_embeddings()
    out = []
    for i in range(0, len(seqs), TEXT_BATCH):
        chunk = seqs[i:i + TEXT_BATCH]
        lengths = torch.tensor([len(s) for s in chunk])
        width = int(lengths.max())
        # padded at the end: a causal model's real tokens never see the padding, and their positions are unchanged
        batch = torch.tensor([s + [last] * (width - len(s)) for s in chunk])
        hidden = base(input_ids=batch, use_cache=False).last_hidden_state  # [batch, token, dim]
        logits = head(hidden[torch.arange(len(chunk)), lengths - 1])  # [batch, vocab]
        out.append(torch.softmax(logits.float(), -1)[:, target])
        if progress is not None:
            progress(min(i + TEXT_BATCH, len(seqs)), len(seqs))
    return torch.cat(out).double().numpy()
