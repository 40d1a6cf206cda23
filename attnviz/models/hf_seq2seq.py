"""Encoder-decoders from Hugging Face directories (BART, T5, Marian...): the text is read by the encoder, the
decoder writes its greedy output, and every attention of that output is returned, as ``date-seq2seq`` does
(:mod:`attnviz.models.seq2seq`): encoder self-attention, decoder self-attention (causal) and cross-attention.

Two passes: ``generate`` (greedy, one beam, at most :data:`MAX_NEW_TOKENS` tokens) finds the output, then one
forward of the model on the input and that output returns transformers' eager weights of all three kinds.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from attnviz.extras import Seq2SeqExtras
from attnviz.models.base import AttentionModel
from attnviz.models.hf_dir import text_limit
from attnviz.models.hf_families import Family
from attnviz.models.token_text import labeller
from attnviz.result import AttentionResult
from attnviz.textinput import bound_text, check_text

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 64
"""Longest output the decoder writes (``extras.output_cut`` tells when it was stopped there)."""
UNFINISHED = "…"
"""Label of the last decoder position when the output stopped before its end token: what it predicts was not
written."""


class HFSeq2SeqModel(AttentionModel):
    """A transformers ``...ForConditionalGeneration`` model with eager attention. ``run`` is thread-safe: nothing
    about the model changes after loading (``generate`` gets its settings per call)."""

    kind = "seq2seq"
    causal = False

    def __init__(self, name: str, model: torch.nn.Module, tokenizer, fam: Family, description: str = "") -> None:
        self.name = name
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = labeller(tokenizer)
        cfg = model.config
        self.n_layers = int(cfg.num_hidden_layers)  # the encoder's (transformers maps the name per family)
        self.n_heads = int(cfg.num_attention_heads)
        self.max_tokens = text_limit(model, tokenizer)
        self.max_new_tokens = max(1, min(MAX_NEW_TOKENS, self.max_tokens - 1))
        self.description = description or (f"{fam.label} from {name}: encoder-decoder, {self.n_layers} encoder "
                                            f"layers x {self.n_heads} heads, {self.max_tokens} tokens")

    def encode(self, text: str) -> tuple[dict[str, torch.Tensor], bool, int]:
        """``(encoding with batch 1, truncated?, characters considered)``, cut to ``max_tokens``."""
        text, cut = bound_text(check_text(text), self.max_tokens)
        full = len(self.tokenizer(text, truncation=False, verbose=False)["input_ids"])
        enc = self.tokenizer(text, truncation=full > self.max_tokens, max_length=self.max_tokens,
                             return_tensors="pt", verbose=False)
        return dict(enc), cut or full > self.max_tokens, len(text)

    @torch.inference_mode()
    def run(self, text: str | None = None, **_: object) -> AttentionResult:
        """Read ``text``, write the greedy output and return every attention of that run.

        Returns:
            ``AttentionResult(kind="seq2seq")``: ``weights`` = encoder self-attention ``[layer, head, source,
            source]``; ``parts["decoder"]`` = decoder self-attention ``[layer, head, target, target]`` (causal;
            ``tokens`` = the token each position wrote, ``key_tokens`` = the decoder's input: its start token then
            the output shifted by one); ``parts["cross"]`` = cross-attention ``[layer, head, target, source]``;
            ``extras`` (:class:`attnviz.extras.Seq2SeqExtras`): ``output`` (the text written), ``input`` (the text
            read), ``output_cut`` (stopped at :data:`MAX_NEW_TOKENS` before the end token).
        Raises:
            ValueError: empty text, or text of special or unknown tokens only.
        """
        enc, truncated, n_chars = self.encode(text)
        ids = enc["input_ids"][0].tolist()
        special = np.array(self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True), bool)
        if special.all():
            raise ValueError("The text has no token the model can read: type some words.")
        written = self.model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=self.max_new_tokens,
                                      min_new_tokens=1)[0].tolist()  # decoder start token first
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        ended = written[-1] in eos and len(written) > 1
        dec_in = written[:-1] if ended else written
        out = self.model(**enc, decoder_input_ids=torch.tensor([dec_in]), output_attentions=True)
        if not out.cross_attentions or out.cross_attentions[0] is None:
            raise ValueError(f"Model {self.name!r} returned no attention weights.")
        enc_w, dec_w, cross_w = (torch.stack(a)[:, 0].float().numpy()  # [layer, head, query, key]
                                 for a in (out.encoder_attentions, out.decoder_attentions, out.cross_attentions))
        produced = self.labels(written[1:]) + ([] if ended else [UNFINISHED])
        source, dec_keys = self.labels(ids), self.labels(dec_in)
        output = self.tokenizer.decode(written, skip_special_tokens=True)
        common = dict(model=self.name, kind="seq2seq", truncated=truncated, n_input_chars=n_chars)
        decoder = AttentionResult(weights=dec_w, tokens=produced, key_tokens=dec_keys, causal=True, **common)
        cross = AttentionResult(weights=cross_w, tokens=produced, key_tokens=source, **common)
        return AttentionResult(weights=enc_w, tokens=source, special=special, parts={"decoder": decoder,
                               "cross": cross}, extras=Seq2SeqExtras(output=output, input=text,
                                                                     output_cut=not ended), **common)
