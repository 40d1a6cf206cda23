"""The families of Hugging Face models attnviz loads from a local directory, and those it refuses, with why.

A family is a ``model_type`` of ``config.json``. Only the families below are loaded: each was checked against
transformers' own eager attention (``attn_implementation="eager"``, ``output_attentions=True``) by the tests
(``tests/test_hf_text.py``, ``tests/test_hf_vision.py``); any other ``model_type`` is refused with the list of
those that work. ``python -m attnviz.models.hf_families`` prints the table of ``docs/models.md``.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """How attnviz loads one ``model_type``."""

    model_type: str                    # config.json's "model_type"
    label: str                         # name people know it by
    kind: str                          # "text", "seq2seq" or "image"
    auto: str = "AutoModel"            # transformers class that loads it
    causal: bool = False               # decoder-only: a query sees itself and earlier keys
    tokens: str = ""                   # how its tokens are labelled
    prefix: tuple[str, ...] = ()       # image models: labels of the tokens before the patches
    note: str = ""                     # what else a person should know (shown in the table)
    refused: str | None = None         # why it cannot be shown; None when it works


WORDPIECE = "WordPiece (##)"
SENTENCEPIECE = "SentencePiece (▁)"
BYTE_BPE = "byte-level BPE (Ġ)"
STACKED = "its attention does not use transformers' attention interface: the eager weights are stacked per layer"
WINDOWED = ("it attends within local windows (shifted every other block) over a patch grid that shrinks from stage "
            "to stage, with a different number of heads per stage, and transformers returns only the last block of "
            "each stage: there is no one [layer, head, query, key] map over one set of tokens to show")
NO_ATTENTION = "it has no attention: a state-space model mixes tokens with a recurrence, not with attention weights"

_CLS = ("[CLS]",)
FAMILIES: dict[str, Family] = {f.model_type: f for f in (
    Family("bert", "BERT", "text", tokens=WORDPIECE,
           note="a plain BERT (absolute positions, GELU) runs on attnviz's own module (`attnviz.models.bert`), "
                "checked against transformers' `BertModel`; others on transformers'"),
    Family("roberta", "RoBERTa", "text", tokens=BYTE_BPE,
           note="position ids start after the padding index: 514 positions embed 512 tokens"),
    Family("xlm-roberta", "XLM-RoBERTa", "text", tokens=SENTENCEPIECE, note="positions as RoBERTa"),
    Family("distilbert", "DistilBERT", "text", tokens=WORDPIECE, note="no segment ids: a pair is read unmarked"),
    Family("albert", "ALBERT", "text", tokens=SENTENCEPIECE, note=STACKED),
    Family("electra", "ELECTRA", "text", tokens=WORDPIECE),
    Family("deberta-v2", "DeBERTa-v2/v3", "text", tokens=SENTENCEPIECE,
           note="relative positions (disentangled attention); " + STACKED),
    Family("mpnet", "MPNet", "text", tokens=WORDPIECE,
           note="positions as RoBERTa, plus a relative position bias; " + STACKED),
    Family("modernbert", "ModernBERT", "text", tokens=BYTE_BPE,
           note="rotary positions; local layers attend within a window (weight 0 beyond)"),
    Family("gpt2", "GPT-2", "text", "AutoModelForCausalLM", True, BYTE_BPE),
    Family("gpt_neox", "GPT-NeoX / Pythia", "text", "AutoModelForCausalLM", True, BYTE_BPE, note="rotary positions"),
    Family("llama", "Llama", "text", "AutoModelForCausalLM", True, SENTENCEPIECE + " or " + BYTE_BPE,
           note="grouped-query attention: each key/value head serves several query heads; one map per query head"),
    Family("mistral", "Mistral", "text", "AutoModelForCausalLM", True, SENTENCEPIECE,
           note="sliding window: a query sees at most the last sliding_window keys (weight 0 beyond)"),
    Family("qwen2", "Qwen2", "text", "AutoModelForCausalLM", True, BYTE_BPE, note="grouped-query attention"),
    Family("gemma", "Gemma", "text", "AutoModelForCausalLM", True, SENTENCEPIECE, note="multi-query attention"),
    Family("qwen3", "Qwen3", "text", "AutoModelForCausalLM", True, BYTE_BPE, note="grouped-query attention"),
    Family("gemma2", "Gemma 2", "text", "AutoModelForCausalLM", True, SENTENCEPIECE,
           note="logit soft-capping; every other layer has a sliding window"),
    Family("gemma3_text", "Gemma 3 (text)", "text", "AutoModelForCausalLM", True, SENTENCEPIECE,
           note="sliding-window layers between global ones"),
    Family("phi3", "Phi-3", "text", "AutoModelForCausalLM", True, SENTENCEPIECE, note="grouped-query attention"),
    Family("opt", "OPT", "text", "AutoModelForCausalLM", True, BYTE_BPE, note="positions offset by 2, as BART"),
    Family("phi", "Phi-1/1.5/2", "text", "AutoModelForCausalLM", True, BYTE_BPE, note="partial rotary positions"),
    Family("bart", "BART", "seq2seq", "AutoModelForSeq2SeqLM", tokens=BYTE_BPE,
           note="positions offset by 2: 1026 positions embed 1024 tokens"),
    Family("t5", "T5", "seq2seq", "AutoModelForSeq2SeqLM", tokens=SENTENCEPIECE,
           note="relative position buckets: the limit is the tokenizer's"),
    Family("marian", "Marian (opus-mt)", "seq2seq", "AutoModelForSeq2SeqLM", tokens=SENTENCEPIECE,
           note="the tokenizer must be a tokenizer.json, or the sentencepiece package must be installed to read "
                "source.spm"),
    Family("vit", "ViT", "image", prefix=_CLS),
    Family("deit", "DeiT", "image", prefix=("[CLS]", "[DIST]"), note="the distillation token is labelled [DIST]"),
    Family("dinov2", "DINOv2", "image", prefix=_CLS),
    Family("dinov2_with_registers", "DINOv2 with registers", "image", prefix=_CLS,
           note="register tokens labelled [REG0], [REG1]..."),
    Family("beit", "BEiT", "image", prefix=_CLS, note="relative position bias inside the weights"),
    Family("clip", "CLIP (vision tower)", "image", "CLIPVisionModel", prefix=_CLS,
           note="the image encoder of a CLIP directory; its text tower is not loaded"),
    Family("clip_vision_model", "CLIP vision model", "image", "CLIPVisionModel", prefix=_CLS),
    Family("swin", "Swin", "image", refused=WINDOWED),
    Family("swinv2", "Swin V2", "image", refused=WINDOWED),
    Family("mamba", "Mamba", "text", refused=NO_ATTENTION),
    Family("mamba2", "Mamba-2", "text", refused=NO_ATTENTION),
)}


def supported(kind: str | None = None) -> list[str]:
    """``model_type`` of the families that load (optionally of one kind)."""
    return [t for t, f in FAMILIES.items() if f.refused is None and (kind is None or f.kind == kind)]


def family(model_type: str) -> Family:
    """The family of a ``model_type``.

    Raises:
        ValueError: a family attnviz refuses (with why), or one it has not checked (with those it has).
    """
    fam = FAMILIES.get(model_type)
    if fam is None:
        raise ValueError(f"attnviz does not load model_type {model_type!r}: only families whose attention weights "
                         f"were checked against transformers' own load, namely {', '.join(supported())}.")
    if fam.refused:
        raise ValueError(f"attnviz cannot show {fam.label} ({model_type}): {fam.refused}.")
    return fam


def markdown_table() -> str:
    """The table of families for ``docs/models.md``: family, model_type, kind, result, notes."""
    rows = ["| family | `model_type` | kind | attention | tokens / notes |", "|---|---|---|---|---|"]
    for f in FAMILIES.values():
        result = f"refused: {f.refused}" if f.refused else "exact (transformers' eager weights)"
        kind = "encoder-decoder" if f.kind == "seq2seq" else ("causal text" if f.causal else f.kind)
        notes = "; ".join(x for x in (f.tokens, f.note) if x)
        rows.append(f"| {f.label} | `{f.model_type}` | {kind} | {result} | {notes} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(markdown_table() + "\n")
