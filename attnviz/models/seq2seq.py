"""A tiny Transformer encoder-decoder with cross-attention, and ``date-seq2seq``: dates in human formats to ISO.

Every attention passes its queries, keys, values and mask through a named module (``parts``) and computes its
post-softmax weights in a named ``nn.Softmax`` module (``attend``), so recorders registered once at load time keep
them (:mod:`attnviz.models.recorder`), in call order: encoder layer 0..L-1 self-attention, then for each decoder
layer its self-attention and its cross-attention. Results hold the parts; heads are recomputed on demand.

Shapes: ``B`` batch, ``S`` source positions, ``T`` target positions, ``C`` model width, ``H`` heads,
``D = C / H`` per-head width.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attnviz.extras import Seq2SeqExtras
from attnviz.models.base import AttentionModel
from attnviz.models.recorder import AttentionParts, AttentionRecorder, PartsRecorder
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "models"


@dataclass
class Seq2SeqConfig:
    """Size of the encoder-decoder."""

    src_vocab: int              # source symbols, PAD included
    tgt_vocab: int              # target symbols, PAD/BOS/EOS included
    d_model: int = 64           # width C of every position
    n_heads: int = 4            # attention heads H per layer
    n_enc_layers: int = 2       # encoder blocks
    n_dec_layers: int = 2       # decoder blocks
    d_ff: int = 256             # hidden width of the feed-forward part
    max_src_len: int = 48       # longest source (characters)
    max_tgt_len: int = 12       # longest target, BOS/EOS included

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}).")


class Vocab:
    """Characters to ids and back. Id 0 is padding; a target vocabulary also has BOS (1) and EOS (2)."""

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, chars: str, specials: tuple[str, ...]) -> None:
        self.chars = chars
        self.specials = specials
        self.itos = list(specials) + list(chars)
        self.stoi = {c: i for i, c in enumerate(self.itos) if i >= len(specials)}

    @classmethod
    def source(cls, chars: str) -> Vocab:
        return cls(chars, ("<pad>",))

    @classmethod
    def target(cls, chars: str) -> Vocab:
        return cls(chars, ("<pad>", "<s>", "</s>"))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.stoi[c] for c in text]
        return ([self.BOS] if bos else []) + ids + ([self.EOS] if eos else [])

    def encode_batch(self, texts: list[str], max_len: int, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """``[B, longest]`` int64, right-padded with PAD; each text cut to ``max_len`` ids."""
        rows = [self.encode(t, bos, eos)[:max_len] for t in texts]
        out = torch.full((len(rows), max(map(len, rows))), self.PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` up to the first EOS, specials dropped."""
        out = []
        for i in ids:
            if i == self.EOS:
                break
            if i >= len(self.specials):
                out.append(self.itos[i])
        return "".join(out)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention; the weights pass through the named softmax ``attend``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)
        self.parts = AttentionParts()
        self.attend = nn.Softmax(dim=-1)
        self.scale = 1 / math.sqrt(d_model // n_heads)
        """What the scores are multiplied by (the forward divides by ``sqrt(D)``: 4 exactly, the same numbers)."""

    @property
    def out_proj(self) -> nn.Linear:
        """The output projection (for the value norms of :mod:`attnviz.models.recorder`)."""
        return self.o

    def forward(self, x: torch.Tensor, memory: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Queries from ``x [B, T, C]``, keys and values from ``memory [B, S, C]``.

        Args:
            allowed: bool, broadcastable to ``[B, H, T, S]``; True where a query may attend a key.
        Returns:
            ``[B, T, C]``.
        """
        B, T, C = x.shape
        S = memory.shape[1]
        H, D = self.n_heads, C // self.n_heads
        q = self.q(x).view(B, T, H, D).transpose(1, 2)       # [B, H, T, D]
        k = self.k(memory).view(B, S, H, D).transpose(1, 2)  # [B, H, S, D]
        v = self.v(memory).view(B, S, H, D).transpose(1, 2)  # [B, H, S, D]
        q, k, v, allowed = self.parts(q, k, v, allowed)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)    # [B, H, T, S]
        weights = self.attend(scores.masked_fill(~allowed, float("-inf")))
        y = (weights @ v).transpose(1, 2).reshape(B, T, C)
        return self.o(y)


def feed_forward(d_model: int, d_ff: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))


class EncoderBlock(nn.Module):
    """Pre-norm block: self-attention, then feed-forward, each added to the residual stream."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.self_attn = Attention(cfg.d_model, cfg.n_heads)
        self.ff = feed_forward(cfg.d_model, cfg.d_ff)

    def forward(self, x: torch.Tensor, src_allowed: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.self_attn(h, h, src_allowed)
        return x + self.ff(self.ln2(x))


class DecoderBlock(nn.Module):
    """Pre-norm block: causal self-attention, cross-attention to the encoder output, feed-forward."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(cfg.d_model) for _ in range(3))
        self.self_attn = Attention(cfg.d_model, cfg.n_heads)
        self.cross_attn = Attention(cfg.d_model, cfg.n_heads)
        self.ff = feed_forward(cfg.d_model, cfg.d_ff)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, tgt_allowed: torch.Tensor,
                src_allowed: torch.Tensor) -> torch.Tensor:
        h = self.ln1(y)
        y = y + self.self_attn(h, h, tgt_allowed)
        y = y + self.cross_attn(self.ln2(y), memory, src_allowed)
        return y + self.ff(self.ln3(y))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer over ids (character-level for ``date-seq2seq``)."""

    def __init__(self, cfg: Seq2SeqConfig) -> None:
        super().__init__()
        self.cfg = cfg
        C = cfg.d_model
        self.src_embed = nn.Embedding(cfg.src_vocab, C, padding_idx=Vocab.PAD)
        self.tgt_embed = nn.Embedding(cfg.tgt_vocab, C, padding_idx=Vocab.PAD)
        self.src_pos = nn.Embedding(cfg.max_src_len, C)
        self.tgt_pos = nn.Embedding(cfg.max_tgt_len, C)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_enc_layers))
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_dec_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(C), nn.LayerNorm(C)
        self.head = nn.Linear(C, cfg.tgt_vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``src [B, S]`` ids -> (memory ``[B, S, C]``, key mask ``[B, 1, 1, S]``, True for real characters)."""
        src_allowed = (src != Vocab.PAD)[:, None, None, :]
        x = self.src_embed(src) + self.src_pos(torch.arange(src.shape[1], device=src.device))
        for block in self.encoder:
            x = block(x, src_allowed)
        return self.enc_ln(x), src_allowed

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src_allowed: torch.Tensor) -> torch.Tensor:
        """``tgt [B, T]`` decoder input ids (BOS first) -> logits ``[B, T, vocab]`` of the next symbol."""
        T = tgt.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt.device).tril()  # [T, T]
        y = self.tgt_embed(tgt) + self.tgt_pos(torch.arange(T, device=tgt.device))
        for block in self.decoder:
            y = block(y, memory, causal, src_allowed)
        return self.head(self.dec_ln(y))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        memory, src_allowed = self.encode(src)
        return self.decode(tgt, memory, src_allowed)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
        """Greedy decoding. Returns ``[B, T]`` ids, BOS first; rows end with EOS (then PAD) or at ``max_len``."""
        max_len = max_len or self.cfg.max_tgt_len
        memory, src_allowed = self.encode(src)
        out = torch.full((src.shape[0], 1), Vocab.BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len - 1):
            nxt = self.decode(out, memory, src_allowed)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, Vocab.PAD), nxt)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == Vocab.EOS
            if done.all():
                break
        return out


_SPACES = re.compile(r"\s+")


def show_char(c: str) -> str:
    """A character as a token label: a space is shown as ``␣``."""
    return "␣" if c == " " else c


class DateSeq2Seq(AttentionModel):
    """``date-seq2seq``: a date written as people write it in, ISO ``YYYY-MM-DD`` out, with every attention.

    ``run`` is thread-safe: the recorder's hooks were registered once at construction and write to
    thread-local storage; nothing else is mutated.
    """

    kind = "seq2seq"
    causal = False

    def __init__(self, net: Seq2SeqTransformer, src_vocab: Vocab, tgt_vocab: Vocab, name: str = "date-seq2seq",
                 meta: dict | None = None) -> None:
        self.net = net.eval()
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.name = name
        self.meta = meta or {}
        self.n_layers = net.cfg.n_enc_layers
        self.n_heads = net.cfg.n_heads
        acc = self.meta.get("heldout", {}).get("exact_match")
        self.description = ("tiny encoder-decoder: dates in human formats -> ISO 8601"
                            + (f" ({acc:.1%} held-out exact match)" if acc is not None else ""))
        self.max_chars = net.cfg.max_src_len
        self._recorder = AttentionRecorder(net)  # the weights themselves, for batched evaluation
        self._parts = PartsRecorder(net)  # what they are made of, for results

    @staticmethod
    def normalise(text: str) -> str:
        """What the model reads: stripped, lower-case, runs of white space collapsed to one space."""
        return _SPACES.sub(" ", text.strip()).lower()

    def check(self, text: object) -> tuple[str, bool]:
        """Normalise and bound a user's text.

        Returns:
            (text the model reads, truncated?)
        Raises:
            ValueError: not a string, empty, or with characters the model does not know.
        """
        if not isinstance(text, str):
            raise ValueError(f"The date must be text, got {type(text).__name__}.")
        norm = self.normalise(text)
        if not norm:
            raise ValueError("The input is empty: type a date, e.g. 'Saturday, the 21st of November 2026'.")
        truncated = len(norm) > self.max_chars
        norm = norm[: self.max_chars].rstrip()
        unknown = sorted({c for c in norm if c not in self.src_vocab.stoi})
        if unknown:
            shown = " ".join(repr(c) for c in unknown[:10])
            raise ValueError(f"The model cannot read {shown}: it knows letters a-z, digits, spaces and , . / - '. "
                             "Write the date with those, e.g. 'Nov 21, 2026'.")
        return norm, truncated

    @torch.inference_mode()
    def translate_batch(self, texts: list[str]) -> list[str]:
        """Greedy outputs for many inputs at once (no attention kept); ``ValueError`` as for :meth:`run`."""
        norm = [self.check(t)[0] for t in texts]
        src = self.src_vocab.encode_batch(norm, self.max_chars)
        out = self.net.greedy(src)
        return [self.tgt_vocab.decode(row[1:].tolist()) for row in out]

    @torch.inference_mode()
    def cross_attention_batch(self, texts: list[str]) -> tuple[list[str], list[np.ndarray]]:
        """Greedy outputs and cross-attention of many inputs in one batched pass (for evaluation).

        Returns:
            (outputs, weights): ``weights[i]`` is float32 ``[layer, head, output, source]`` of input ``i``, with the
            same rows and columns as ``run(text=texts[i]).parts["cross"]``.
        Raises:
            ValueError: as for :meth:`run`.
        """
        norm = [self.check(t)[0] for t in texts]
        src = self.src_vocab.encode_batch(norm, self.max_chars)   # [B, S]
        ids = self.net.greedy(src)                                # [B, T], BOS first
        with self._recorder.record() as store:
            self.net(src, ids)
        n_enc = self.net.cfg.n_enc_layers
        cross = torch.stack(store[n_enc + 1::2], dim=1).float().numpy()  # [B, layer, head, T, S]
        outputs, weights = [], []
        for i, row in enumerate(ids.tolist()):
            produced = row[1:]
            n_out = produced.index(Vocab.EOS) + 1 if Vocab.EOS in produced else len(row)
            outputs.append(self.tgt_vocab.decode(produced))
            weights.append(cross[i, :, :, :n_out, : len(norm[i])])
        return outputs, weights

    @torch.inference_mode()
    def run(self, text: str | None = None, **_: object) -> AttentionResult:
        """Translate one date and return every attention of the run.

        Returns:
            ``AttentionResult(kind="seq2seq")``: ``weights`` = encoder self-attention
            ``[layer, head, source, source]``, ``tokens`` = source characters; ``parts["decoder"]`` = decoder
            self-attention ``[layer, head, target, target]`` (causal; ``tokens`` = output tokens, the symbol each
            position produces; ``key_tokens`` = decoder input tokens, ``<s>`` then the output shifted by one);
            ``parts["cross"]`` = cross-attention ``[layer, head, target, source]`` (``tokens`` = output tokens,
            ``key_tokens`` = source characters); ``extras`` (:class:`Seq2SeqExtras`): ``output`` the generated
            string, ``input`` the normalised input, ``valid_date`` whether the output is a real date, ``has_year``
            whether the input holds a year (without one it is not a date the model knows, and the output is a guess).
        Raises:
            ValueError: empty input or characters the model does not know.
        """
        norm, truncated = self.check(text)
        src = self.src_vocab.encode_batch([norm], self.max_chars)  # [1, S]
        ids = self.net.greedy(src)[0].tolist()                     # BOS, y1.., EOS?
        if Vocab.EOS in ids:
            ids = ids[: ids.index(Vocab.EOS) + 1]
        dec_in = torch.tensor([ids[:-1] if ids[-1] == Vocab.EOS else ids])  # [1, T]
        with self._parts.record() as store:
            self.net(src, dec_in)
        n_enc, n_dec = self.net.cfg.n_enc_layers, self.net.cfg.n_dec_layers
        if len(store) != n_enc + 2 * n_dec:
            raise RuntimeError(f"recorded {len(store)} attention calls, expected {n_enc + 2 * n_dec}")
        enc = self._parts.heads(store[:n_enc])              # [layer, head, S, S]
        dec = self._parts.heads(store[n_enc::2])            # [layer, head, T, T]
        cross = self._parts.heads(store[n_enc + 1::2])      # [layer, head, T, S]
        produced = ids[1:] if ids[-1] == Vocab.EOS else ids[1:] + [None]
        out_tokens = [self.tgt_vocab.itos[i] if i is not None else "…" for i in produced]
        in_tokens = [self.tgt_vocab.itos[i] for i in dec_in[0].tolist()]
        src_tokens = [show_char(c) for c in norm]
        output = self.tgt_vocab.decode(ids[1:])
        common = dict(model=self.name, kind="seq2seq", truncated=truncated, n_input_chars=len(norm))
        decoder = AttentionResult(dec, tokens=out_tokens, key_tokens=in_tokens, causal=True, **common)
        cross_r = AttentionResult(cross, tokens=out_tokens, key_tokens=src_tokens, **common)
        return AttentionResult(
            enc, tokens=src_tokens, parts={"decoder": decoder, "cross": cross_r},
            extras=Seq2SeqExtras(output=output, input=norm, valid_date=is_iso_date(output), has_year=has_year(norm)),
            **common,
        )


YEAR = re.compile(r"(?<!\d)[12]\d{3}(?:\d{4})?(?!\d)")
"""A year 1000-2999 on its own (``2026``) or leading eight digits (``20261121``): every date the model learnt
has one (``attnviz.train.dates.FORMATS``)."""


def has_year(text: str) -> bool:
    """True when ``text`` holds a year the way the model learnt dates (see :data:`YEAR`)."""
    return YEAR.search(text) is not None


def is_iso_date(text: str) -> bool:
    """True when ``text`` is a real calendar date written ``YYYY-MM-DD``."""
    try:
        return len(text) == 10 and dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def load_date_seq2seq(directory: Path = ASSETS, name: str = "date-seq2seq") -> DateSeq2Seq:
    """Load the shipped weights (``{name}.safetensors`` + ``{name}.json``).

    Raises:
        ValueError: the files are missing (rebuild them with ``python -m attnviz.train.dates``).
    """
    from safetensors.torch import load_file

    weights, meta_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    if not weights.is_file() or not meta_path.is_file():
        raise ValueError(f"{weights} or {meta_path} is missing: run `python -m attnviz.train.dates` to rebuild.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    cfg = Seq2SeqConfig(**meta["config"])
    net = Seq2SeqTransformer(cfg)
    net.load_state_dict(load_file(str(weights)))
    log.info("loaded %s (%d parameters)", name, sum(p.numel() for p in net.parameters()))
    return DateSeq2Seq(net, Vocab.source(meta["source_chars"]), Vocab.target(meta["target_chars"]), name, meta)

