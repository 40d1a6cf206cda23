"""The batched forward and a batch's statistics: many texts through a text model at once (the one place the corpus
pipeline runs a model).

:func:`summarise_batch` is what a worker does with a planned batch:

1. tokenize the batch once (one tokenizer call; a text past the model's limit goes through ``model.encode``, which
   truncates it as ``model.run`` does);
2. group the texts by token count and run each group as one unpadded batch through the model's reader
   (:meth:`attnviz.models.reader.AttentionReader.forward`; long texts in forwards of at most :data:`GROUP_BYTES`
   of weights): no compute on padding, and MiniLM stays on its traced path (which takes no padding mask);
3. recompute the group's weights ``[layer, text, head, query, key]`` from its capture in one product per layer
   (as :class:`attnviz.models.heads.CapturedHeads` does head by head), and every statistic of every head of every
   text in one pass of array operations (:func:`attnviz.corpus.per_text.values_of`); the weights are then dropped,
   the capture kept;
4. summarise the batch (:func:`attnviz.corpus.reduce.summarise_values`) and name the token positions only of the
   entries the summary keeps, its top texts (:func:`attnviz.corpus.per_text.top_cells`, on their weights made
   again from the capture).

Nothing per text (no :class:`~attnviz.result.AttentionResult`, no per-head arrays) is made. A text's weights equal
those of ``model.run(text=...)`` up to float error (the matrix products take other paths for other batch shapes):
up to 1.6e-6 seen in a statistic of one text, as much as ``run`` itself moves between 1 and 2 torch threads. Corpus
means and deviations are tested against the API within 1e-6.

:func:`head_stats_batch` gives the same numbers per text, with the positions of every head and statistic (the
batch's statistics for a caller that wants each text's).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnviz.corpus.per_text import STAT_NAMES, TextStats, all_positions, key_masks, top_cells, values_of
from attnviz.corpus.reduce import Summary, summarise_values
from attnviz.models.base import AttentionModel
from attnviz.models.heads import MIN, attention_weights
from attnviz.models.threads import SHORT_KEYS, run_threads
from attnviz.textinput import bound_text, check_text


def check_text_model(model: AttentionModel) -> None:
    """``ValueError`` unless ``model`` is a self-attention text model this module can batch."""
    if model.kind != "text" or not all(hasattr(model, a) for a in ("encode", "reader", "tokenizer", "labels")):
        raise ValueError(f"Corpus statistics need a text model (such as minilm); {model.name} is a {model.kind} "
                         "model.")


@dataclass(frozen=True)
class Encoded:
    """One readable text as the model reads it: its inputs (one list of ints per model input, in the tokenizer's
    order), whether it was cut, and its key masks (:func:`attnviz.corpus.per_text.key_masks`)."""

    inputs: dict[str, list[int]]
    truncated: bool
    masks: np.ndarray

    @property
    def n_tokens(self) -> int:
        return len(self.inputs["input_ids"])


GROUP_BYTES = 32 << 20
"""Float32 weights (all layers) of the texts run as one forward, at most (at least one text): texts of one token count
are cut into forwards of this size, so a batch of long texts never holds more weights, nor a forward's layer more
scores, than this (a 512-token MiniLM text alone takes 75 MB: one per forward)."""


class Group:
    """Texts of one token count run as one forward: their places in the batch, their key masks and what their
    weights are computed from (the capture; or the weights, for a model that stores them), kept so that the
    weights of any of them can be made again (:meth:`weights`) when their positions are named."""

    def __init__(self, model: AttentionModel, members: np.ndarray, encoded: Sequence[Encoded]) -> None:
        self.members = members
        self.masks = np.stack([e.masks for e in encoded])  # bool [text, kind, key]
        self.n = n = encoded[0].n_tokens
        inputs = {name: torch.tensor([e.inputs[name] for e in encoded], dtype=torch.long) for name in encoded[0].inputs}
        reader = model.reader
        self.plan = reader.plan
        self.stored: np.ndarray | None = None  # float32 [layer, text, head, query, key]
        if reader.plan.mode == "stack":
            self.stored = np.stack([s.weights for s in reader(inputs, n)], 1)
            return
        with torch.inference_mode():
            self.run = reader.forward(inputs, n)
        if self.run.weights is not None:
            self.stored = self.run.weights.numpy()
        elif not bool(self.run.ok.all()):
            raise ValueError("This input's attention mask is not one interval of keys per query; attnviz cannot "
                             "recompute its heads.")

    @torch.inference_mode()
    def weights(self, texts: np.ndarray | None = None) -> np.ndarray:
        """float32 ``[layer, text, head, query, key]`` of the group's texts ``texts`` (indices; all by default),
        recomputed from the capture as :class:`attnviz.models.heads.CapturedHeads` does, one product per layer."""
        if self.stored is not None:
            return self.stored if texts is None else self.stored[:, texts]
        run, plan, n = self.run, self.plan, self.n
        pick = slice(None) if texts is None else torch.from_numpy(np.asarray(texts, dtype=np.int64))
        n_texts = run.q.shape[1] if texts is None else len(texts)
        out = torch.empty((plan.n_layers, n_texts, plan.n_heads, n, n), dtype=torch.float32)
        keys = torch.arange(n)
        with run_threads(n <= SHORT_KEYS):
            for layer in range(plan.n_layers):
                lo, hi = run.lo[layer][pick], run.hi[layer][pick]  # [text, query]
                mask = None
                if int(lo.max()) > 0 or int(hi.min()) < n:  # some keys not allowed: eager's additive mask
                    blocked = (keys < lo[..., None]) | (keys >= hi[..., None])  # [text, query, key]
                    mask = torch.zeros(blocked.shape, dtype=torch.float32).masked_fill_(blocked, MIN)[:, None]
                out[layer] = attention_weights(run.q[layer][pick], run.k[layer][pick], plan.scaling[layer],
                                               plan.softcap[layer], mask)
        return out.numpy()


def encode_batch(model: AttentionModel, texts: Sequence[str]) -> list[Encoded | None]:
    """Each text as ``model.run`` would read it, or None for one it refuses (blank, or no token it can read)."""
    tok = model.tokenizer
    bounded: dict[int, tuple[str, bool]] = {}
    for i, text in enumerate(texts):
        try:
            bounded[i] = bound_text(check_text(text), model.max_tokens)
        except ValueError:
            continue
    places = list(bounded)
    out: list[Encoded | None] = [None] * len(texts)
    if not places:
        return out
    full = tok([bounded[i][0] for i in places], truncation=False, verbose=False)
    for j, i in enumerate(places):
        inputs = {name: list(values[j]) for name, values in full.items()}
        cut = bounded[i][1]
        if len(inputs["input_ids"]) > model.max_tokens:  # as model.encode truncates it
            enc, cut, _ = model.encode(texts[i])
            inputs = {name: value[0].tolist() for name, value in enc.items()}
        ids = inputs["input_ids"]
        special = np.array(tok.get_special_tokens_mask(ids, already_has_special_tokens=True), bool)
        if special.all():  # model.run refuses it
            continue
        out[i] = Encoded(inputs, cut, key_masks(model.labels(ids), special))
    return out


def compute_groups(model: AttentionModel, encoded: Sequence[Encoded | None]) -> list[Group]:
    """The readable texts of ``encoded`` grouped by token count (in order of first appearance), each group cut into
    forwards of at most :data:`GROUP_BYTES` of weights, run."""
    by_length: dict[int, list[int]] = {}
    for i, e in enumerate(encoded):
        if e is not None:
            by_length.setdefault(e.n_tokens, []).append(i)
    groups = []
    for n, members in by_length.items():
        step = max(1, GROUP_BYTES // (4 * model.n_layers * model.n_heads * n * n))
        for a in range(0, len(members), step):
            chunk = members[a:a + step]
            groups.append(Group(model, np.array(chunk), [encoded[i] for i in chunk]))
    return groups


def summarise_batch(model: AttentionModel, ids: Sequence[int], texts: Sequence[str], top_k: int,
                    n_positions: int) -> Summary:
    """The :class:`~attnviz.corpus.reduce.Summary` of one batch of texts (ids ``ids``): see the module docstring.
    A text the model refuses is counted as skipped."""
    ids = np.asarray(ids, dtype=np.int64)
    encoded = encode_batch(model, texts)
    groups = compute_groups(model, encoded)
    kept = np.array([i for i, e in enumerate(encoded) if e is not None], dtype=np.int64)
    values = np.empty((len(kept), model.n_layers, model.n_heads, len(STAT_NAMES)))
    row_of = np.full(len(texts), -1)
    row_of[kept] = np.arange(len(kept))
    where: dict[int, tuple[int, int]] = {}  # row in ``values`` -> (group, text in the group)
    for g, group in enumerate(groups):
        values[row_of[group.members]] = values_of(group.weights(), group.masks)
        where.update({int(row_of[i]): (g, j) for j, i in enumerate(group.members)})

    def positions(text: np.ndarray, layer: np.ndarray, head: np.ndarray, stat: np.ndarray) -> np.ndarray:
        out = np.empty((len(text), n_positions, 2), dtype=np.int32)
        g_of = np.array([where[int(t)] for t in text]).reshape(-1, 2)
        for g, group in enumerate(groups):
            in_group = np.flatnonzero(g_of[:, 0] == g)
            if not len(in_group):
                continue
            needed, j = np.unique(g_of[in_group, 1], return_inverse=True)  # the group's texts named, made again
            weights = group.weights(needed)
            for s, name in enumerate(STAT_NAMES):
                sel = np.flatnonzero(stat[in_group] == s)
                if len(sel):
                    rows = in_group[sel]
                    out[rows] = top_cells(weights[layer[rows], j[sel], head[rows]], name, n_positions,
                                          group.masks[needed[j[sel]]])
        return out

    return summarise_values(ids[kept], values, sum(encoded[i].n_tokens for i in kept),
                            sum(encoded[i].truncated for i in kept),
                            [int(ids[i]) for i, e in enumerate(encoded) if e is None], top_k, n_positions, positions)


def head_stats_batch(model: AttentionModel, texts: Sequence[str], n_positions: int = 3) -> list[TextStats | None]:
    """Statistics of every head on each text, with the positions of every head and statistic.

    Returns:
        one :class:`~attnviz.corpus.per_text.TextStats` per text; None for a text the model refuses (blank, or no
        token it can read).
    """
    encoded = encode_batch(model, texts)
    out: list[TextStats | None] = [None] * len(texts)
    for group in compute_groups(model, encoded):
        weights = group.weights()
        values = values_of(weights, group.masks)
        for j, i in enumerate(group.members):
            positions = all_positions(weights[:, j], group.masks[j], n_positions)
            out[i] = TextStats(values[j], positions, encoded[i].n_tokens, encoded[i].truncated)
    return out
