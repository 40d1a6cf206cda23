"""Capture, in a transformers model's forward, what its attention weights are made of; or, where that is not
exact, the weights themselves.

How: :func:`prepare` switches a model to an attention implementation registered with transformers
(``AttentionInterface``, with eager attention's masks), :func:`attention`; attnviz's own encoders
(:mod:`attnviz.models.encoder_parts`) find it by the same name. Called with a :class:`Run` (the keyword
:data:`KWARG`, which transformers passes down to every attention call, so concurrent runs each fill their own), it
either

- **captures** (``plan.mode == "capture"``): copies the layer's queries and keys (after RoPE; keys before
  grouped-query repeats), the allowed key interval of each query read off the mask, and the value norms into the
  run's buffers, and computes the attention output as eager attention does, bit for bit, in one reused buffer
  (:func:`blocked_attention`): the ``[layer, head, query, key]`` weights of a long input never exist.
  Heads are recomputed later from the capture (:class:`attnviz.models.heads.CapturedHeads`);
- or **stores** (``"store"``): calls the family's own ``eager_attention_forward`` and copies its weights into the
  run's ``[layer, batch, head, query, key]`` buffer (bounded by :data:`STORED_MAX_BYTES`).

At load, :func:`prepare` numbers the attention modules in call order, finds each one's output projection (for the
value norms of :meth:`attnviz.result.AttentionResult.contribution`) and runs a probe input twice: through the
family's eager attention, and captured. It captures only when every recomputed head equals the eager weights
(≤ 1e-6) and every layer's output equals eager's; otherwise (an attention function with terms the capture does not
know, e.g. relative-position biases or attention sinks) the model stores. A model whose attention does not go
through the interface at all keeps its own implementation and returns ``output_attentions`` (``"stack"``).

A model whose layers attend over different positions (an encoder-decoder: encoder self-attention, decoder
self-attention, cross-attention) is prepared in groups (:func:`prepare_groups`): the layers grouped by the positions
they attend over in the probe, each group captured or stored on its own, and a forward takes a :class:`Runs`, one
run per group.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from attnviz.models import encoder_parts, mapped
from attnviz.models.heads import (
    MIN,
    BlockMaxima,
    CapturedHeads,
    attention_weights,
    block_rows,
    blocks,
    key_range,
    weighted_values,
)
from attnviz.result import HeadSource, StoredWeights

log = logging.getLogger(__name__)

KWARG = "attnviz_run"
"""Keyword that carries a :class:`Run` (the buffers of one forward) to every attention call."""
IMPLEMENTATION = "attnviz"
FULL_MAX_KEYS = 512
"""Inputs up to this many positions may take the traced forward (:mod:`attnviz.models.traced`)."""
FULL_MAX_BYTES = 256 << 20
"""Up to this size of a layer's ``[batch, head, query, key]`` weights (256 MiB: SmolLM2 up to 2,730 tokens, DINOv2
at every size) its heads are computed together, as eager attention computes them; larger layers one head at a time
(:func:`blocked_attention`). Either way the forward is eager's bit for bit."""
STORED_MAX_BYTES = 1 << 30
"""Largest ``[layer, batch, head, query, key]`` float32 buffer a storing model fills (1 GiB)."""
EXACT = 1e-6
"""Largest difference between a recomputed head and the eager weights on the probe for a model to capture."""
_PROBE = "attnviz_probe"
_LAYER = "attnviz_layer"
_GROUP = "attnviz_group"
_GRAM = "attnviz_gram"

Seen = Callable[[torch.Tensor, torch.Tensor, int, int], None]
"""``seen(w, rows, k0, h0)``: shown a layer's weights as the forward computes them (:func:`blocked_attention`)."""


@dataclass
class Plan:
    """What :func:`prepare` found about a model's attention.

    ``mode``: ``"capture"``, ``"store"`` or ``"stack"`` (see the module docstring). The rest describes the
    layers (``n_heads`` query heads, ``n_kv`` key/value heads of ``head_dim`` each, per-layer ``scaling`` and
    ``softcap``); ``norms``: whether the value norms are captured (every output projection found).
    """

    mode: str
    n_layers: int = 0
    n_heads: int = 0
    n_kv: int = 0
    head_dim: int = 0
    scaling: list[float] = field(default_factory=list)
    softcap: list[float | None] = field(default_factory=list)
    norms: bool = False


class Run:
    """The buffers one forward fills (every one ``[layer, batch, ...]``): ``q``, ``k``, ``lo``, ``hi``, ``ok`` when
    capturing, ``weights`` when storing, ``norms`` when the value norms are captured."""

    def __init__(self, plan: Plan, tensors: tuple[torch.Tensor, ...]) -> None:
        self.plan = plan
        self.q = self.k = self.lo = self.hi = self.ok = self.weights = self.norms = None
        self.progress: Callable[[int, int], None] | None = None
        """Called with ``(layers done, layers)`` after each layer of an eager forward (a traced one calls nothing)."""
        self.overview: torch.Tensor | None = None
        """float32 ``[layer, head, s, s']``: the block maxima of a captured eager forward of one input, made from
        each layer's weights as the forward computes them (:meth:`want_overview`)."""
        self._maxima: BlockMaxima | None = None
        self.overview_size: int | None = None
        self.means: torch.Tensor | None = None
        """float32 ``[layer, query, key]``: each layer's heads averaged, from the weights of a captured eager forward
        of one input as it computes them (:meth:`want_means`)."""
        for name, t in zip(self.names(plan), tensors, strict=True):
            setattr(self, name, t)
        self._masks: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._scratch: torch.Tensor | None = None

    def want_overview(self, size: int, n_query: int, n_key: int) -> None:
        """Make the overview at ``size`` during the forward (what the all-heads grid draws; one input, capture)."""
        self._maxima = BlockMaxima(self.plan.n_heads, n_query, n_key, size)
        self.overview_size = size
        self.overview = mapped.zeros((self.plan.n_layers, self.plan.n_heads, *self._maxima.shape))

    def want_means(self, n_query: int, n_key: int) -> None:
        """Keep each layer's heads averaged during the forward (what rollout multiplies; one input, capture)."""
        self.means = mapped.empty((self.plan.n_layers, n_query, n_key))  # every cell written by seen()

    def seen(self, layer: int) -> Seen | None:
        """What a layer's weights are shown to as the forward computes them (:func:`blocked_attention`'s ``seen``):
        the overview's block maxima and the mean of the heads, as asked (None: neither)."""
        maxima, means = self._maxima, None if self.means is None else self.means[layer].numpy()
        if maxima is None and means is None:
            return None
        if maxima is not None:
            maxima.clear()

        def seen(w: torch.Tensor, rows: torch.Tensor, k0: int, h0: int) -> None:
            if maxima is not None:
                maxima.add(w, rows, k0, h0)
            if means is not None:
                mean_of_heads(w.numpy(), rows.numpy(), k0, means, h0, self.plan.n_heads)

        return seen

    def scratch(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A float32 buffer of ``shape`` for a layer's weights, the same memory for every layer of this run (its
        contents are whatever the last layer left)."""
        n = int(np.prod(shape))
        if self._scratch is None or self._scratch.numel() < n:
            self._scratch = torch.empty(n, dtype=torch.float32)
        return self._scratch[:n].view(shape)

    @staticmethod
    def names(plan: Plan) -> tuple[str, ...]:
        """The buffers a run of ``plan`` has, in the order of :meth:`tensors`."""
        return (("q", "k", "lo", "hi", "ok") if plan.mode == "capture" else ("weights",)) + (
            ("norms",) if plan.norms else ())

    @classmethod
    def new(cls, plan: Plan, batch: int, n_query: int, n_key: int) -> Run:
        """A run with new (uninitialised) buffers for ``batch`` inputs of ``n_query`` x ``n_key`` positions, each
        in a mapping of its own (:mod:`attnviz.models.mapped`: a result keeps them)."""
        L, B, H, D = plan.n_layers, batch, plan.n_heads, plan.head_dim
        shapes = {"q": (L, B, H, n_query, D), "k": (L, B, plan.n_kv, n_key, D), "lo": (L, B, n_query),
                  "hi": (L, B, n_query), "ok": (L,), "weights": (L, B, H, n_query, n_key), "norms": (L, B, H, n_key)}
        types = {"lo": torch.int32, "hi": torch.int32, "ok": torch.bool}
        return cls(plan, tuple(mapped.empty(shapes[n], types.get(n, torch.float32)) for n in cls.names(plan)))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The buffers, in a fixed order (a traced forward takes them as positional inputs)."""
        return tuple(getattr(self, n) for n in self.names(self.plan))

    def intervals(self, mask: torch.Tensor | None, n_query: int,
                  n_key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(lo, hi, ok)``: the allowed keys ``lo <= key < hi`` of each query, ``[batch, query]``, read off an
        eager mask ``[batch, 1, query, key]`` (0 allowed, float32's minimum not), and whether that interval is
        exactly the mask. Computed once per mask tensor of the forward (layers share it)."""
        cached = self._masks.get(id(mask))
        if cached is None:
            cached = self._masks[id(mask)] = mask_intervals(mask, self.q.shape[1], n_query, n_key)
        return cached


def mean_of_heads(w: np.ndarray, rows: np.ndarray, k0: int, out: np.ndarray, h0: int = 0,
                  n_heads: int | None = None) -> None:
    """Write the mean over heads of weights ``w [head, rows, keys]`` of the rows ``rows`` over keys ``k0..`` into
    ``out [query, key]`` (their other keys: 0), in place: the very numbers of
    :func:`attnviz.analysis.aggregate.fuse_heads` (``np.mean`` over heads: a sum, head after head, then a division).
    ``w`` may hold the heads ``h0..`` of ``n_heads`` (all of them by default), given in order: the first adds to
    zeros, the last divides."""
    n_heads = w.shape[0] if n_heads is None else n_heads
    k1, last = k0 + w.shape[-1], h0 + w.shape[0] == n_heads
    if len(rows) and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        target = out[rows[0]:rows[0] + len(rows)]  # a view: written in place
    else:
        target = out[rows]  # a copy, written back below
    if h0 == 0:
        target[:, :k0] = 0
        target[:, k1:] = 0
        np.add.reduce(w, axis=0, out=target[:, k0:k1])
    else:
        target[:, k0:k1] += np.add.reduce(w, axis=0)
    if last:
        np.true_divide(target[:, k0:k1], n_heads, out=target[:, k0:k1])
    if not np.shares_memory(target, out):
        out[rows] = target


def mask_intervals(mask: torch.Tensor | None, batch: int, n_query: int,
                   n_key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """See :meth:`Run.intervals`; a boolean mask (True = allowed) is read as well. A row with no allowed key gets
    ``lo = hi = 0`` (eager then spreads it evenly; so does the recomputation)."""
    if mask is None:
        lo = torch.zeros((batch, n_query), dtype=torch.int64)
        return lo, torch.full((batch, n_query), n_key, dtype=torch.int64), torch.tensor(True)
    if mask.dim() != 4 or mask.shape[1] != 1:  # a mask per head: a bias the capture does not keep
        return (torch.zeros((batch, n_query), dtype=torch.int64),) * 2 + (torch.tensor(False),)
    m = mask[:, 0].expand(batch, n_query, n_key)
    if m.dtype == torch.bool:
        allowed, values_ok = m, torch.tensor(True)
    else:
        allowed = m == 0
        values_ok = (allowed | (m == MIN)).all()
    seen = allowed.any(-1)
    lo = torch.where(seen, allowed.to(torch.uint8).argmax(-1), 0)
    hi = torch.where(seen, n_key - allowed.flip(-1).to(torch.uint8).argmax(-1), 0)
    return lo, hi, values_ok & (allowed.sum(-1) == hi - lo).all()


def _eager(module: torch.nn.Module) -> Callable:
    return sys.modules[type(module).__module__].eager_attention_forward


def attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The attention implementation attnviz registers: the family's eager attention when no :class:`Run` is
    given; else it captures or stores into the run (see the module docstring).

    Args:
        query: ``[batch, head, query, dim]``; key, value: ``[batch, kv_head, key, dim]``.
    Returns:
        (output ``[batch, query, head, dim]``, weights ``[batch, head, query, key]`` or None when captured).
    """
    run, probe = kwargs.pop(KWARG, None), kwargs.pop(_PROBE, None)
    if isinstance(run, Runs):
        run = run.runs[getattr(module, _GROUP)]
    if run is None or run.weights is not None:
        out, weights = _eager(module)(module, query, key, value, attention_mask, **kwargs)
        if probe is not None:
            probe.append(Call(module, query, key, out, weights, kwargs.get("scaling"), kwargs.get("softcap")))
        if run is not None:
            layer = getattr(module, _LAYER)
            weights = run.weights[layer].copy_(weights)
            if run.norms is not None:
                run.norms[layer].copy_(value_norms(value, getattr(module, _GRAM)))
            if run.progress is not None:
                run.progress(layer + 1, run.plan.n_layers)
        return out, weights
    layer = getattr(module, _LAYER)
    scaling = kwargs.get("scaling")
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    softcap = kwargs.get("softcap")
    lo, hi, ok = run.intervals(attention_mask, query.shape[2], key.shape[2])
    run.q[layer].copy_(query)
    run.k[layer].copy_(key)
    run.lo[layer].copy_(lo)
    run.hi[layer].copy_(hi)
    run.ok[layer].copy_(ok)
    if run.norms is not None:
        run.norms[layer].copy_(value_norms(value, getattr(module, _GRAM)))
    seen = run.seen(layer) if query.shape[0] == 1 else None
    out = blocked_attention(query, key, value, attention_mask, lo, hi, scaling, softcap, run.scratch, seen)
    if seen is not None and run._maxima is not None:
        run.overview[layer] = run._maxima.result()
    out = out.transpose(1, 2).contiguous()
    if probe is not None:
        probe.append(Call(module, query, key, out, None, scaling, softcap))
    if run.progress is not None:
        run.progress(layer + 1, run.plan.n_layers)
    return out, None


def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                      lo: torch.Tensor, hi: torch.Tensor, scaling: float, softcap: float | None,
                      scratch: Callable[[tuple[int, ...]], torch.Tensor] | None = None,
                      seen: Seen | None = None) -> torch.Tensor:
    """Eager attention's output ``[batch, head, query, dim]``, bit for bit: all heads at once up to
    :data:`FULL_MAX_BYTES` of weights, one head at a time beyond (a 4,096-token SmolLM2 layer: 67 MB per head instead
    of 604 MB for nine). Found on this machine (torch 2.13, CPU): eager's batched products over the heads give
    each head the bits of that head's product alone, while a product over a block of queries rounds differently in
    the last bit, and such 1-ulp differences grew to a few 1e-6 in the weights of SmolLM2's last layers at 4,096
    tokens. A masked layer computes the scores of each block of queries over only the keys it may see
    (:func:`_masked_in_one_buffer`).

    ``scratch(shape)``: a float32 buffer to compute weights in (a run's layers share it; inputs over
    :data:`FULL_MAX_KEYS` use it: a 2,048-token SmolLM2 layer then takes 0.14 s instead of 0.37 s, the 151 MB of
    weights no longer faulted in afresh by each step). ``seen(w, rows, k0, h0)``: shown the first input's weights
    ``w [head, rows, keys]`` of the heads ``h0..`` and rows ``rows`` over keys ``k0..`` as they are computed (for
    the overview and the mean of the heads)."""
    if 4 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] <= FULL_MAX_BYTES:
        return _heads_attention(q, k, v, mask, lo, hi, scaling, softcap, scratch, seen, 0)
    out = q.new_empty((*q.shape[:3], v.shape[-1]))
    group = q.shape[1] // k.shape[1]  # query heads per key head
    for h in range(q.shape[1]):
        g = h // group
        out[:, h:h + 1] = _heads_attention(q[:, h:h + 1], k[:, g:g + 1], v[:, g:g + 1], mask, lo, hi, scaling,
                                           softcap, scratch, seen, h)
    return out


def _heads_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, lo: torch.Tensor,
                     hi: torch.Tensor, scaling: float, softcap: float | None,
                     scratch: Callable[[tuple[int, ...]], torch.Tensor] | None, seen: Seen | None,
                     h0: int) -> torch.Tensor:
    """Eager attention of the heads ``h0..`` that ``q`` holds, their weights in one buffer (``scratch``'s when the
    input is over :data:`FULL_MAX_KEYS`)."""
    n_query, n_key = q.shape[2], k.shape[2]
    buffer = scratch((*q.shape[:3], n_key)) if scratch is not None and n_key > FULL_MAX_KEYS else None
    if buffer is not None and mask is not None:
        return _masked_in_one_buffer(q, k, v, mask, lo, hi, scaling, softcap, buffer, seen, h0)
    w = attention_weights(q, k, scaling, softcap, mask, buffer)
    if seen is not None:
        seen(w[0], torch.arange(n_query), 0, h0)
    return weighted_values(w, v)


KEY_ALIGN = 64
"""Key ranges of :func:`_masked_in_one_buffer` are widened to multiples of this many keys, so that every key of a
block takes the same vector lanes of the softmax's kernels as in eager's whole row (its partial sums then only
gain exact zeros)."""


def _aligned(k0: int, k1: int, n_key: int) -> tuple[int, int]:
    """``k0..k1`` widened to whole :data:`KEY_ALIGN` blocks; to the row's end past its last whole block."""
    k0 -= k0 % KEY_ALIGN
    k1 = -(-k1 // KEY_ALIGN) * KEY_ALIGN
    return k0, (n_key if k1 > n_key - n_key % KEY_ALIGN else k1)


def _masked_in_one_buffer(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, lo: torch.Tensor,
                          hi: torch.Tensor, scaling: float, softcap: float | None, w: torch.Tensor,
                          seen: Seen | None, h0: int = 0) -> torch.Tensor:
    """Eager's masked attention, bit for bit, with the scores and softmax of each block of queries computed over
    only the keys it may see (:func:`_aligned`; a causal layer: about half of them) into ``w``, the whole
    ``[batch, head, query, key]`` buffer (zeros elsewhere, as eager's masked weights are), then eager's product
    of that buffer with the values. At 2,048 SmolLM2 tokens this skips half of each layer's scores, mask and
    softmax."""
    n_query, n_key = q.shape[2], k.shape[2]
    for a, b in blocks(n_query, block_rows(q.shape[0] * q.shape[1], n_key)):
        k0, k1 = _aligned(*key_range(lo[:, a:b], hi[:, a:b], n_key), n_key)
        block = attention_weights(q[:, :, a:b], k[:, :, k0:k1], scaling, softcap, mask[:, :, a:b, k0:k1])
        rows = w[:, :, a:b]
        rows[..., :k0] = 0
        rows[..., k1:] = 0
        rows[..., k0:k1] = block
        if seen is not None:
            seen(block[0], torch.arange(a, b), k0, h0)
    return weighted_values(w, v)


def value_norms(value: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """``‖v_j W_O^h‖`` for every query head ``h`` and key ``j``, ``[batch, head, key]``, from ``value``
    ``[batch, kv_head, key, dim]`` and the Gram matrices ``W_O^hᵀ W_O^h`` ``[head, dim, dim]`` (a quadratic form in
    ``dim`` instead of a projection to the model width)."""
    v = value.repeat_interleave(gram.shape[0] // value.shape[1], dim=1)  # [batch, head, key, dim]
    return (torch.matmul(v, gram) * v).sum(-1).clamp_min(0).sqrt()


@dataclass
class Call:
    """One attention call of a probe forward."""

    module: torch.nn.Module
    query: torch.Tensor
    key: torch.Tensor
    out: torch.Tensor
    weights: torch.Tensor | None
    scaling: float | None
    softcap: float | None


def prepare(model: torch.nn.Module, example: Mapping[str, torch.Tensor], name: str) -> Plan:
    """Route ``model``'s attention through :func:`attention` and decide how it is read (once, at load, before the
    model is shared; see the module docstring). ``example``: a probe input, batch 1, without padding."""
    groups = _prepare(model, example, name, split=False)
    return Plan("stack") if groups is None else groups[0].plan


@dataclass
class Group:
    """Attention layers of one kind, in call order, in a model whose layers attend over different positions (an
    encoder-decoder: encoder self-attention, decoder self-attention, cross-attention); ``n_query`` x ``n_key``:
    their positions in the probe."""

    plan: Plan
    n_query: int
    n_key: int


class Runs:
    """The runs of one forward of a model prepared in groups (:func:`prepare_groups`): ``runs[g]`` holds the
    layers of group ``g`` (one :class:`Run` per group, each of its own positions and mode)."""

    def __init__(self, runs: list[Run]) -> None:
        self.runs = list(runs)


def prepare_groups(model: torch.nn.Module, example: Mapping[str, torch.Tensor], name: str) -> list[Group] | None:
    """As :func:`prepare`, for a model whose attention layers attend over different positions: the layers are
    grouped by their ``(query, key)`` positions in the probe (``example`` must give every kind of layer its own),
    in the order the forward first calls each group, and each group captures when its recomputed heads equal the
    eager weights and its outputs eager's, else stores. A forward then takes a :class:`Runs` of one run per group.
    None when the attention does not go through the interface (the model keeps its own)."""
    return _prepare(model, example, name, split=True)


def _prepare(model: torch.nn.Module, example: Mapping[str, torch.Tensor], name: str,
             split: bool) -> list[Group] | None:
    if type(model).__module__.startswith("transformers."):
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, eager_mask

        AttentionInterface.register(IMPLEMENTATION, attention)
        AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)  # the masks eager attention gets
    before = model.config._attn_implementation
    try:
        model.set_attn_implementation(IMPLEMENTATION)
        inputs: dict[int, torch.Tensor] = {}  # what each linear layer read: to find the output projections
        hooks = [m.register_forward_pre_hook(lambda mod, args: inputs.__setitem__(id(mod), args[0]))
                 for m in model.modules() if isinstance(m, torch.nn.Linear)]
        try:
            eager = _probe(model, example, None)
        finally:
            for h in hooks:
                h.remove()
        modules = [c.module for c in eager]
        if not eager or len(set(map(id, modules))) != len(modules) or any(c.weights is None for c in eager):
            raise ValueError(f"{len(eager)} attention calls, not one per distinct module with weights")
    except Exception:  # an architecture without the attention interface: as it was, its weights stacked
        log.warning("%s: attention does not go through the attention interface; its weights are stacked", name,
                    exc_info=True)
        model.set_attn_implementation(before)
        return None
    kinds: dict[tuple[int, int], list[Call]] = {}
    for c in eager:
        kinds.setdefault((c.query.shape[2], c.key.shape[2]) if split else (0, 0), []).append(c)
    parts = list(kinds.values())
    groups: list[Group] = []
    uniform: list[bool] = []
    for g, calls in enumerate(parts):
        for layer, c in enumerate(calls):
            setattr(c.module, _LAYER, layer)
            if split:
                setattr(c.module, _GROUP, g)
        shapes = {(c.query.shape[1], c.key.shape[1], c.query.shape[-1]) for c in calls}
        heads, kv, dim = next(iter(shapes))
        plan = Plan("store", len(calls), heads, kv, dim, norms=_find_projections(model, inputs, calls, name))
        plan.scaling = [dim ** -0.5 if c.scaling is None else float(c.scaling) for c in calls]
        plan.softcap = [None if c.softcap is None else float(c.softcap) for c in calls]
        groups.append(Group(plan, calls[0].query.shape[2], calls[0].key.shape[2]))
        uniform.append(len(shapes) == 1 and heads % kv == 0)
        if not uniform[-1]:
            log.warning("%s: layers of different shapes %s; its weights are stored", name, shapes)
    for g, (group, calls) in enumerate(zip(groups, parts, strict=True)):
        if not uniform[g]:
            continue
        what = f"{name}" + (f" (layers attending from {group.n_query} to {group.n_key} positions in the probe)"
                            if split else "")
        why = _capture_differs(model, example, groups, g, calls, split)
        if why:
            log.warning("%s: its attention is stored, not recomputed: %s", what, why)
            continue
        plan = group.plan
        plan.mode = "capture"
        log.info("%s: attention captured (%d layers x %d heads, %d kv heads of %d)", what, plan.n_layers,
                 plan.n_heads, plan.n_kv, plan.head_dim)
    return groups


def _probe(model: torch.nn.Module, example: Mapping[str, torch.Tensor], run: Run | Runs | None) -> list[Call]:
    calls: list[Call] = []
    with torch.inference_mode():
        model(**example, output_attentions=run is None, **{_PROBE: calls}, **({} if run is None else {KWARG: run}))
    return calls


def _capture_differs(model: torch.nn.Module, example: Mapping[str, torch.Tensor], groups: list[Group], g: int,
                     eager: list[Call], split: bool) -> str | None:
    """Why the capture of group ``g`` (the others as they are) of ``example`` is not the eager attention of its
    calls ``eager`` (None when it is)."""
    plan, n = groups[g].plan, groups[g].n_query
    if any(c.query.shape[2] != n or c.key.shape[2] != groups[g].n_key for c in eager):
        return "its layers attend over different numbers of positions"
    plan.mode = "capture"
    try:
        runs = [Run.new(gr.plan, 1, gr.n_query, gr.n_key) for gr in groups]
        calls = _probe(model, example, Runs(runs) if split else runs[0])
        captured = [c for c in calls if getattr(c.module, _GROUP, 0) == g] if split else calls
        run = runs[g]
        if len(captured) != len(eager) or not bool(run.ok.all()):  # e.g. a bias per head passed as the mask
            return "its masks are not one interval of keys per query"
        (source,) = sources(run, [(0, n)], [(0, groups[g].n_key)])
    except Exception as e:  # noqa: BLE001  (any failure of the capture means: store)
        return f"the capture failed ({type(e).__name__}: {e})"
    finally:
        plan.mode = "store"
    for layer, (a, b) in enumerate(zip(eager, captured, strict=True)):
        if a.softcap != b.softcap or not torch.allclose(a.out, b.out, rtol=0, atol=1e-5):
            return f"layer {layer}'s output differs from eager attention's"
        for head in range(plan.n_heads):
            diff = np.abs(source.rows(layer, head, 0, n) - a.weights[0, head].numpy()).max()
            if not diff <= EXACT:
                return f"layer {layer} head {head} recomputed differs from the eager weights by {diff:.2g}"
    return None


def _find_projections(model: torch.nn.Module, inputs: dict[int, torch.Tensor], eager: list[Call], name: str) -> bool:
    """Find each attention module's output projection, the linear layer that read its output (``inputs``: by
    ``id`` of each linear layer, what it read in the probe), on the module (e.g. ``o_proj``) or beside it (e.g.
    BERT's ``output.dense``), and keep the Gram matrices ``W_O^hᵀ W_O^h`` of its heads on the module. True if
    found for every layer."""
    parents = {id(child): parent for parent in model.modules() for child in parent.children()}
    for c in eager:
        flat = c.out.reshape(*c.out.shape[:2], -1)  # [batch, query, head * dim]
        around = (c.module, parents.get(id(c.module), c.module))
        found = {id(m): m for owner in around for m in owner.modules() if isinstance(m, torch.nn.Linear)
                 and id(m) in inputs and inputs[id(m)].shape == flat.shape and torch.equal(inputs[id(m)], flat)}
        if len(found) != 1:
            log.warning("%s: no output projection found for %s; contributions are not available", name,
                        type(c.module).__name__)
            return False
        (proj,) = found.values()
        setattr(c.module, _GRAM, gram(proj.weight, c.query.shape[1]))
    return True


def gram(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``W_O^hᵀ W_O^h`` of each head's slice of an output projection ``weight [width, head * dim]``:
    ``[head, dim, dim]``."""
    w = weight.detach().float().reshape(weight.shape[0], n_heads, -1).transpose(0, 1)  # [head, width, dim]
    return torch.matmul(w.transpose(1, 2), w)


def sources(run: Run, spans: list[tuple[int, int]],
            key_spans: list[tuple[int, int]] | None = None) -> list[HeadSource]:
    """One head source per batch item, over its positions ``start..stop-1`` (padding left out); ``key_spans``:
    its key positions where they are not its query positions (cross-attention). A single input's arrays are views
    of the run's buffers; a batch item's are copies (it must not hold the whole batch)."""
    if run.ok is not None and not bool(run.ok.all()):
        raise ValueError("This input's attention mask is not one interval of keys per query; attnviz cannot "
                         "recompute its heads.")
    out: list[HeadSource] = []
    for i, ((a, b), (ka, kb)) in enumerate(zip(spans, key_spans or spans, strict=True)):
        def part(t: torch.Tensor | None, *index: slice, item: int = i) -> np.ndarray | None:
            if t is None:
                return None
            x = t[(slice(None), item, *index)].numpy()
            return x if len(spans) == 1 else np.ascontiguousarray(x)
        norms = part(run.norms, slice(None), slice(ka, kb))
        if run.weights is not None:
            out.append(StoredWeights(part(run.weights, slice(None), slice(a, b), slice(ka, kb)), norms))
            continue
        lo = np.clip(part(run.lo, slice(a, b)) - ka, 0, kb - ka).astype(np.int32)
        hi = np.clip(part(run.hi, slice(a, b)) - ka, 0, kb - ka).astype(np.int32)
        one = len(spans) == 1
        overviews = {} if run.overview is None or not one else {run.overview_size: run.overview.numpy()}
        means = None if run.means is None or not one else run.means.numpy()
        out.append(CapturedHeads(part(run.q, slice(None), slice(a, b)), part(run.k, slice(None), slice(ka, kb)),
                                 run.plan.scaling, lo, hi, run.plan.softcap, norms, overviews, means))
    return out


encoder_parts.FUNCTIONS[IMPLEMENTATION] = attention  # attnviz's own encoders (transformers' models: at prepare)
