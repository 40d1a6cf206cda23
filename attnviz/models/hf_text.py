"""Text models from Hugging Face transformers (encoders and causal decoders), run with eager attention."""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from attnviz.models import into_buffer
from attnviz.models.base import AttentionModel
from attnviz.models.relevance import Relevance, text_relevance
from attnviz.models.token_text import byte_level_label, is_byte_level
from attnviz.models.traced import TracedAttentions, trace_attentions
from attnviz.result import AttentionResult
from attnviz.textinput import bound_text, check_text

log = logging.getLogger(__name__)


class HFTextModel(AttentionModel):
    """A transformers text model whose forward returns ``attentions`` (one per layer)."""

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
        self.traced: TracedAttentions | None = None
        self.buffered = into_buffer.prepare(model, dict(tokenizer("attnviz", return_tensors="pt")), name)
        """Attention layers written into one buffer per run (:mod:`attnviz.models.into_buffer`); 0: stacked."""

    def trace(self) -> None:
        """Run through a TorchScript trace from now on (:mod:`attnviz.models.traced`), if it reproduces the eager
        attention exactly on a sentence pair of another length; else stay eager."""
        example = self.tokenizer("attnviz traces this input once.", return_tensors="pt")
        check = self.tokenizer("A check of another length,", "with a second segment.", return_tensors="pt")
        self.traced = trace_attentions(self.model, dict(example), dict(check), self.name,
                                       buffer=self.buffer if self.buffered else None)

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

    @torch.inference_mode()
    def run(self, text: str | None = None, text_pair: str | None = None, **_: object) -> AttentionResult:
        """Attention of the model on ``text`` (and ``text_pair``, a second segment, for encoders).

        Returns:
            AttentionResult with ``weights[layer, head, query, key]``.
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
        return self._result(dict(enc), segments, truncated, n_chars)

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
        return self._result({"input_ids": t, "attention_mask": torch.ones_like(t)}, None, False, None)

    def _result(self, enc: dict[str, torch.Tensor], segments: np.ndarray | None, truncated: bool,
                n_chars: int | None) -> AttentionResult:
        ids = enc["input_ids"][0].tolist()
        special = np.array(self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True), bool)
        if special.all():
            raise ValueError(self._unreadable(ids))
        weights = self.attentions(enc)[:, 0].numpy()  # [layer, head, query, key], no copy
        return AttentionResult(
            weights=weights, tokens=self.labels(ids), model=self.name, kind="text",
            special=special, segments=segments, causal=self.causal, truncated=truncated, n_input_chars=n_chars,
        )

    def relevance(self, text: str | None = None, target: int | str | None = None,
                  ids: list[int] | None = None) -> Relevance:
        """Gradient-weighted relevance of each prompt token for the next token ``target`` (token id or one-token
        text; ``None``: the most probable), Chefer et al. 2021; causal models only. See
        :func:`attnviz.models.relevance.text_relevance`."""
        return text_relevance(self, text=text, ids=ids, target=target)

    def _unreadable(self, ids: list[int]) -> str:
        """Why a text whose tokens are all special cannot be shown, for the person who typed it."""
        unk = self.tokenizer.unk_token
        if unk is not None and self.tokenizer.unk_token_id in ids:
            return (f"The model knows none of the text's words: each became the unknown token {unk}. A very long "
                    "word (for MiniLM, over 100 characters without a space) becomes it too. Type some words.")
        return ("The text has no token the model can read: only control, invisible or unsupported characters, or "
                "the model's own special tokens (such as [CLS] or [SEP]). Type some words.")

    def attentions(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[layer, batch, head, query, key]`` float32: traced when possible, else eager; written into one buffer
        where the model allows it, else stacked."""
        buffer = self.buffer(enc) if self.buffered else None
        if self.traced is not None and self.traced.accepts(enc):
            layers = self.traced(enc, buffer)
        else:
            out = self.model(**enc, output_attentions=True, **({} if buffer is None else {into_buffer.KWARG: buffer}))
            if not getattr(out, "attentions", None) or out.attentions[0] is None:
                raise ValueError(f"Model {self.name!r} returned no attention weights; it must support "
                                 "attn_implementation='eager' and output_attentions=True.")
            layers = tuple(out.attentions)
        return buffer if buffer is not None else torch.stack(layers).float()

    def buffer(self, enc: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A new ``[layer, batch, head, query, key]`` buffer for the attention of ``enc``."""
        batch, n = enc["input_ids"].shape
        return into_buffer.new_buffer(self.buffered, (batch, self.n_heads, n, n))


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
