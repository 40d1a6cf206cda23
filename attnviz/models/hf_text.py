"""Text models from Hugging Face transformers (encoders and causal decoders), with eager attention's numbers."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from attnviz.models.base import AttentionModel
from attnviz.models.reader import AttentionReader, ReadsAttention
from attnviz.models.relevance import Relevance, text_relevance
from attnviz.models.token_text import byte_level_label, is_byte_level
from attnviz.result import AttentionResult
from attnviz.textinput import bound_text, check_text

log = logging.getLogger(__name__)

PROBE = "attnviz checks, at load, that it recomputes this probe's attention exactly."
"""The probe input of :func:`attnviz.models.capture.prepare`."""


class HFTextModel(ReadsAttention, AttentionModel):
    """A transformers text model (encoder or causal decoder) whose attention goes through transformers' attention
    interface (:mod:`attnviz.models.capture`): heads recomputed from a capture, or stored weights."""

    kind = "text"

    def __init__(self, name: str, model: torch.nn.Module, tokenizer, causal: bool = False,
                 description: str = "", max_tokens: int | None = None,
                 labeller: Callable[[list[int]], list[str]] | None = None) -> None:
        """``max_tokens``: the input limit (default what the model can embed, :func:`attnviz.models.hf_dir.text_limit`);
        ``labeller``: token ids to labels (default :func:`token_labels`)."""
        from attnviz.models.hf_dir import text_limit

        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.causal = causal
        self.description = description
        cfg = model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.n_heads = int(cfg.num_attention_heads)
        self.max_tokens = int(max_tokens or text_limit(model, tokenizer))
        self.labels = labeller or (lambda ids: token_labels(tokenizer, ids))
        probe = tokenizer(PROBE, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        self.reader = AttentionReader(model, dict(probe), name)  # cut: a model may embed fewer positions

    def trace(self) -> None:
        """Run through a TorchScript trace from now on (:mod:`attnviz.models.traced`), if it reproduces the eager
        forward exactly on a sentence pair of another length; else stay eager."""
        example = self.tokenizer("attnviz traces this input once.", return_tensors="pt")
        check = self.tokenizer("A check of another length,", "with a second segment.", return_tensors="pt")
        self.reader.trace(dict(example), dict(check))

    def encode(self, text: str, text_pair: str | None = None) -> tuple[dict, bool, int]:
        """Tokenize, truncating to ``max_tokens``.

        Returns:
            (encoding as tensors with batch 1, truncated?, characters considered)
        """
        text = check_text(text)
        text, cut = bound_text(text, self.max_tokens)
        n_chars = len(text)
        if text_pair is not None:
            text_pair = check_text(text_pair, "second text")
            text_pair, cut_b = bound_text(text_pair, self.max_tokens)
            cut = cut or cut_b
            n_chars += len(text_pair)
        full = self.tokenizer(text, text_pair, truncation=False, verbose=False)
        over = len(full["input_ids"]) > self.max_tokens
        enc = self.tokenizer(text, text_pair, truncation=over, max_length=self.max_tokens,
                             return_tensors="pt", verbose=False)
        return enc, cut or over, n_chars

    def run(self, text: str | None = None, text_pair: str | None = None,
            progress: Callable[[int, int], None] | None = None, overview: int | None = None,
            **_: object) -> AttentionResult:
        """Attention of the model on ``text`` (and ``text_pair``, a second segment, for encoders).

        Args:
            progress: called with ``(layers done, layers)`` after each layer of a long input (past 512 tokens);
                it may raise to stop the run.
            overview: for a long input, make ``result.overview(overview)`` during the forward, from the weights
                it computes anyway (the all-heads grid of a 2,048-token input then costs no second pass).
        Returns:
            AttentionResult over the input's tokens.
        Raises:
            ValueError: empty text, or text with no token the model knows.
        """
        if text_pair is not None and not isinstance(text_pair, str):
            raise ValueError(f"The second text must be a string, got {type(text_pair).__name__}.")
        if text_pair is not None and not text_pair.strip():
            text_pair = None  # a blank second text means no pair
        if text_pair is not None and self.causal:
            raise ValueError("Sentence pairs are for encoder models; a causal model reads one text.")
        enc, truncated, n_chars = self.encode(text, text_pair)
        segments = None
        if text_pair is not None and "token_type_ids" in enc:
            segments = enc["token_type_ids"][0].numpy().astype(np.int8)
        return self._run_encoded(dict(enc), segments, truncated, n_chars, progress, overview)

    @torch.inference_mode()
    def run_ids(self, ids: list[int]) -> AttentionResult:
        """Attention of the model on token ids as they are (e.g. a prompt and its generated continuation, which
        need not tokenize back to the same ids).

        Raises:
            ValueError: no ids, more than ``max_tokens``, or ids outside the vocabulary.
        """
        vocab = self.model.get_input_embeddings().weight.shape[0]
        if not ids or len(ids) > self.max_tokens or not all(0 <= int(i) < vocab for i in ids):
            raise ValueError(f"Token ids must be 1..{self.max_tokens} ids in 0..{vocab - 1}.")
        t = torch.tensor([list(map(int, ids))])
        return self._run_encoded({"input_ids": t, "attention_mask": torch.ones_like(t)}, None, False, None)

    def _run_encoded(self, enc: dict[str, torch.Tensor], segments: np.ndarray | None, truncated: bool,
                     n_chars: int | None, progress: Callable[[int, int], None] | None = None,
                     overview: int | None = None) -> AttentionResult:
        ids = enc["input_ids"][0].tolist()
        self._check_readable(ids)
        (source,) = self.reader(enc, len(ids), progress=progress, overview=overview)
        return self._result(source, ids, truncated, n_chars, segments)

    def relevance(self, text: str | None = None, target: int | str | None = None,
                  ids: list[int] | None = None) -> Relevance:
        """Gradient-weighted relevance of each prompt token for the next token ``target`` (token id or one-token
        text; ``None``: the most probable), Chefer et al. 2021; causal models only. See
        :func:`attnviz.models.relevance.text_relevance`."""
        return text_relevance(self, text=text, ids=ids, target=target)

    def run_batch(self, texts: list[str]) -> list[AttentionResult]:
        """Attention of the model on several texts in one forward (padded to the longest; texts of similar length
        waste least). Each result equals ``run(text=texts[i])`` (within float rounding, 1e-6).

        Raises:
            ValueError: as :meth:`run`, for any of the texts.
        """
        encoded = [self.encode(t) for t in texts]
        rows = [enc["input_ids"][0].tolist() for enc, _, _ in encoded]
        for ids in rows:
            self._check_readable(ids)
        if not rows:
            return []
        n = max(map(len, rows))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        inputs = {name: torch.full((len(rows), n), pad if name == "input_ids" else 0, dtype=torch.long)
                  for name in encoded[0][0]}
        for i, (enc, _, _) in enumerate(encoded):  # padded on the right: positions stay 0..len-1
            for name, value in enc.items():
                inputs[name][i, : value.shape[1]] = value[0]
        same = len({len(ids) for ids in rows}) == 1  # no padding: the traced forward takes it (up to 512)
        sources = self.reader(inputs, n, spans=[(0, len(ids)) for ids in rows], traced=same)
        return [self._result(src, ids, cut, n_chars, None)
                for src, ids, (_, cut, n_chars) in zip(sources, rows, encoded, strict=True)]

    def _result(self, source, ids: list[int], truncated: bool, n_chars: int,
                segments: np.ndarray | None) -> AttentionResult:
        special = np.array(self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True), bool)
        return AttentionResult(source, tokens=self.labels(ids), model=self.name, kind="text",
                               special=special, segments=segments, causal=self.causal, truncated=truncated,
                               n_input_chars=n_chars)

    def _check_readable(self, ids: list[int]) -> None:
        """``ValueError`` for a text whose tokens are all special, saying why, for the person who typed it."""
        special = self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        if not all(special):
            return
        unk = self.tokenizer.unk_token
        if unk is not None and self.tokenizer.unk_token_id in ids:
            raise ValueError(f"The model knows none of the text's words: each became the unknown token {unk}. A "
                             "very long word (for MiniLM, over 100 characters without a space) becomes it too. "
                             "Type some words.")
        raise ValueError("The text has no token the model can read: only control, invisible or unsupported "
                         "characters, or the model's own special tokens (such as [CLS] or [SEP]). Type some words.")


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """Readable labels: byte-level BPE tokens decoded to their text (see :mod:`attnviz.models.token_text`);
    otherwise the markers ▁ and Ċ shown as a space and a newline."""
    toks = tokenizer.convert_ids_to_tokens(ids)
    if is_byte_level(tokenizer):
        return [byte_level_label(t) for t in toks]
    return [t.replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\\n") for t in toks]


def load_hf_directory(path: Path, name: str | None = None, description: str = "") -> HFTextModel:
    """Load a local Hugging Face text model directory (no network) with eager attention
    (:func:`attnviz.models.hf_dir.load_directory`, which also takes encoder-decoders and vision models).

    Raises:
        ValueError: the directory holds no usable text model or tokenizer.
    """
    from attnviz.models.hf_dir import load_directory

    model = load_directory(path, name=name, description=description)
    if not isinstance(model, HFTextModel):
        raise ValueError(f"{path} holds a {model.kind} model, not a text encoder or decoder.")
    return model
