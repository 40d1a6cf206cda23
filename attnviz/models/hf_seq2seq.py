"""Encoder-decoders from Hugging Face directories (BART, T5, Marian...): the text is read by the encoder, the
decoder writes its greedy output, and every attention of that output is returned, as ``date-seq2seq`` does
(:mod:`attnviz.models.seq2seq`): encoder self-attention, decoder self-attention (causal) and cross-attention.

Two passes: ``generate`` (greedy, one beam, at most :data:`MAX_NEW_TOKENS` tokens) finds the output, then one
forward of the model on the input and that output reads all three kinds through the capture of
:mod:`attnviz.models.capture` (:func:`~attnviz.models.capture.prepare_groups`, one group per kind): each kind whose
heads the load-time probe recomputes exactly from the captured queries and keys (BART, Marian: all three; T5: its
cross-attention) holds those; the others (T5's self-attention, whose relative position bias the capture does not
keep) hold the eager weights. A family whose attention does not go through transformers' attention interface keeps
``output_attentions``.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from attnviz.extras import Seq2SeqExtras
from attnviz.models import capture
from attnviz.models.base import AttentionModel
from attnviz.models.capture import KWARG, Group, Run, Runs
from attnviz.models.hf_dir import text_limit
from attnviz.models.hf_families import Family
from attnviz.models.token_text import labeller
from attnviz.result import AttentionResult, HeadSource
from attnviz.textinput import bound_text, check_text

log = logging.getLogger(__name__)

MAX_NEW_TOKENS = 64
"""Longest output the decoder writes (``extras.output_cut`` tells when it was stopped there)."""
PROBE = "attnviz checks, at load, that it recomputes this probe's attention exactly."
"""The probe input of :func:`attnviz.models.capture.prepare_groups` (read by the encoder; the decoder reads its
start token and the first two tokens of it: another length, so that the three kinds of layers differ)."""
KINDS = ("encoder", "decoder", "cross")
"""The kinds of attention of an encoder-decoder, in the order its forward first calls them."""
UNFINISHED = "…"
"""Label of the last decoder position when the output stopped before its end token: what it predicts was not
written."""


Heads = HeadSource | np.ndarray
"""One kind of attention of a run: its head source, or its stacked ``[layer, head, query, key]`` weights."""


class HFSeq2SeqModel(AttentionModel):
    """A transformers ``...ForConditionalGeneration`` model, its attention read through the capture (see the module
    docstring). ``run`` is thread-safe: nothing about the model changes after loading (``generate`` gets its settings
    per call; a forward fills buffers of its own)."""

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
        self.base: torch.nn.Module = getattr(model, "base_model", model)
        self.groups: dict[str, Group] | None = self._prepare()
        """The capture of each kind of attention (:data:`KINDS`), None when it cannot be read that way."""

    def _prepare(self) -> dict[str, Group] | None:
        enc = dict(self.tokenizer(PROBE, truncation=True, max_length=self.max_tokens, return_tensors="pt"))
        start = self.model.generation_config.decoder_start_token_id
        start = self.model.config.decoder_start_token_id if start is None else start
        ids = enc["input_ids"][0].tolist()
        dec = [int(start)] + ids[:2] + ids[2:3] * (len(ids) == 3)  # a length other than the input's
        probe = {**enc, "decoder_input_ids": torch.tensor([dec]), "use_cache": False}
        groups = capture.prepare_groups(self.base, probe, self.name)
        s, t = len(ids), len(dec)
        if groups is None or [(g.n_query, g.n_key) for g in groups] != [(s, s), (t, t), (t, s)]:
            if groups is not None:
                log.warning("%s: its attention layers are not encoder, decoder and cross-attention in that order; "
                            "its weights are stacked", self.name)
            return None
        log.info("%s: %s", self.name, ", ".join(f"{kind} {g.plan.mode}d" for kind, g in zip(KINDS, groups,
                                                                                              strict=True)))
        return dict(zip(KINDS, groups, strict=True))

    @property
    def captures(self) -> dict[str, bool]:
        """Whether each kind of attention (:data:`KINDS`) is recomputed from a capture (else its weights are
        stored)."""
        return {kind: self.groups is not None and g.plan.mode == "capture"
                for kind, g in (self.groups or dict.fromkeys(KINDS)).items()}

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
            ``AttentionResult(kind="seq2seq")``: its heads the encoder self-attention ``[layer, head, source,
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
        enc_w, dec_w, cross_w = self.attention(enc, dec_in)
        produced = self.labels(written[1:]) + ([] if ended else [UNFINISHED])
        source, dec_keys = self.labels(ids), self.labels(dec_in)
        output = self.tokenizer.decode(written, skip_special_tokens=True)
        common = dict(model=self.name, kind="seq2seq", truncated=truncated, n_input_chars=n_chars)
        decoder = AttentionResult(dec_w, tokens=produced, key_tokens=dec_keys, causal=True, **common)
        cross = AttentionResult(cross_w, tokens=produced, key_tokens=source, **common)
        return AttentionResult(enc_w, tokens=source, special=special, parts={"decoder": decoder,
                               "cross": cross}, extras=Seq2SeqExtras(output=output, input=text,
                                                                     output_cut=not ended), **common)

    def attention(self, enc: dict[str, torch.Tensor], dec_in: list[int]) -> tuple[Heads, Heads, Heads]:
        """Encoder self-attention, decoder self-attention and cross-attention of one forward on the encoding
        ``enc`` (batch 1) and the decoder input ``dec_in``: head sources (captured or stored), or stacked eager
        weights ``[layer, head, query, key]`` when the model is not read through the capture."""
        decoder_input_ids = torch.tensor([dec_in])
        if self.groups is None:
            out = self.model(**enc, decoder_input_ids=decoder_input_ids, output_attentions=True)
            if not out.cross_attentions or out.cross_attentions[0] is None:
                raise ValueError(f"Model {self.name!r} returned no attention weights.")
            return tuple(torch.stack(a)[:, 0].float().numpy()  # [layer, head, query, key]
                         for a in (out.encoder_attentions, out.decoder_attentions, out.cross_attentions))
        s, t = enc["input_ids"].shape[1], len(dec_in)
        shapes = {"encoder": (s, s), "decoder": (t, t), "cross": (t, s)}
        runs = [Run.new(self.groups[kind].plan, 1, *shapes[kind]) for kind in KINDS]
        self.base(**enc, decoder_input_ids=decoder_input_ids, use_cache=False, **{KWARG: Runs(runs)})
        return tuple(capture.sources(run, [(0, shapes[kind][0])], [(0, shapes[kind][1])])[0]
                     for kind, run in zip(KINDS, runs, strict=True))
