"""Load any local Hugging Face model directory of a checked family (:mod:`attnviz.models.hf_families`).

The steps, each of which refuses with one ``ValueError`` naming the problem: the directory's files
(:mod:`attnviz.models.hf_files`: config, safetensors weights, no pickle), its family (known and not refused), its
tokenizer or image processor, the weights themselves (every weight the attention needs present, none of another
shape), then one run whose attention must come out (a layer per block, finite rows that sum to 1). Only a model
that passed all of them is returned: nothing is half-loaded. No network (``local_files_only``) and no code from the
directory (``trust_remote_code=False``).

The length limit of a text model is what it can embed: the rows of its absolute position table minus where its
positions start (RoBERTa numbers positions from its padding index + 1, BART from 2), else the config's
``max_position_embeddings`` (rotary and relative positions), bounded by the tokenizer's ``model_max_length`` and
:data:`MAX_TOKENS`.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from attnviz.models import bert
from attnviz.models.base import AttentionModel
from attnviz.models.hf_families import Family, family
from attnviz.models.hf_files import DirectoryFiles, read_directory
from attnviz.result import AttentionResult

log = logging.getLogger(__name__)

MAX_TOKENS = 512
"""Longest input attnviz runs a directory model on: a model that embeds more is cut here (every weight of a
512-token run of a 30-layer, 9-head model is already 283 MB)."""
CHECK_TEXT = "attnviz checks that this model's attention comes out."
_POSITIONS = re.compile(r"(^|\.)(position_embeddings|embed_positions|wpe)$")
_HARMLESS_MISSING = re.compile(r"(^|\.)(pooler|lm_head|classifier)\.")
"""Weights that may be absent from a checkpoint without changing attention (they act after the last layer)."""
_LOAD = dict(local_files_only=True, trust_remote_code=False)


def load_directory(path: str | Path, name: str | None = None, description: str = "") -> AttentionModel:
    """Load a local Hugging Face model directory (text, encoder-decoder or vision) with eager attention.

    Args:
        path: the directory (config.json, model.safetensors, and a tokenizer or preprocessor_config.json).
        name: the model's name in results (default: the folder's name).
    Returns:
        ``HFTextModel`` (``kind="text"``), ``HFSeq2SeqModel`` (``"seq2seq"``) or ``HFVisionModel`` (``"image"``).
    Raises:
        ValueError: the directory cannot be shown (see the module docstring); the message says why.
    """
    files = read_directory(Path(path))
    fam = family(files.config["model_type"])
    name = name or files.path.name
    if fam.kind == "image":
        from attnviz.models.hf_vision import load_vision

        return load_vision(files, fam, name, description)
    tokenizer = load_tokenizer(files)
    model = load_weights(files, fam)
    with refusing(name):
        _fit_inputs(tokenizer, model, files.path)
        if fam.kind == "seq2seq":
            from attnviz.models.hf_seq2seq import HFSeq2SeqModel

            loaded: AttentionModel = HFSeq2SeqModel(name, model, tokenizer, fam, description)
        else:
            loaded = text_model(name, model, tokenizer, fam, description)
    check_run(loaded, text=CHECK_TEXT)
    log.info("loaded %s from %s: %r", fam.label, files.path, loaded)
    return loaded


def text_model(name: str, model: torch.nn.Module, tokenizer, fam: Family, description: str = ""):
    """An :class:`~attnviz.models.hf_text.HFTextModel` of a loaded encoder or decoder, with its limit and labels."""
    from attnviz.models.hf_text import HFTextModel
    from attnviz.models.token_text import labeller

    cfg = model.config
    causal = fam.causal or bool(getattr(cfg, "is_decoder", False))
    limit = text_limit(model, tokenizer)
    window = getattr(cfg, "sliding_window", None) if getattr(cfg, "use_sliding_window", True) else None
    description = description or (
        f"{fam.label} from {name}: {cfg.num_hidden_layers} layers x {cfg.num_attention_heads} heads"
        + (", causal" if causal else "") + (f", sliding window {window}" if window else "") + f", {limit} tokens")
    return HFTextModel(name, model, tokenizer, causal=causal, description=description, max_tokens=limit,
                       labeller=labeller(tokenizer))


def load_tokenizer(files: DirectoryFiles):
    """The directory's tokenizer (``AutoTokenizer``, offline, no remote code).

    Raises:
        ValueError: no tokenizer files, one that needs a package attnviz does not install, or one that fails.
    """
    from transformers import AutoTokenizer

    if not files.has_tokenizer:
        raise ValueError(f"{files.path} has no tokenizer (tokenizer.json, vocab.txt, ...): copy the tokenizer "
                         "files that came with the model into the folder (tokenizer.save_pretrained(folder)).")
    try:
        return AutoTokenizer.from_pretrained(files.path, **_LOAD)
    except ImportError as e:  # a slow tokenizer whose library is not installed (MarianTokenizer: sentencepiece)
        why = " ".join(str(e).split()).split(". ")[0]
        package = "sentencepiece" if "sentencepiece" in why.lower() else why
        raise ValueError(f"The tokenizer of {files.path} cannot be read without {package}, which is not installed "
                         f"({why}). Install it, or put the tokenizer in the folder as a tokenizer.json.") from e
    except Exception as e:  # transformers raises many kinds for a bad tokenizer; any means it cannot be used
        raise ValueError(f"The tokenizer of {files.path} could not be loaded ({type(e).__name__}: {e}).") from e


def load_weights(files: DirectoryFiles, fam: Family) -> torch.nn.Module:
    """The model with eager attention and float32 weights from safetensors, in eval mode: a BERT whose config
    attnviz's own module computes (:mod:`attnviz.models.bert`) in that module, any other with transformers.

    Raises:
        ValueError: loading fails, or weights the attention depends on are missing from the files.
    """
    if fam.model_type == "bert" and bert.fits(files.config):
        return _own_bert(files)
    import transformers

    auto = getattr(transformers, fam.auto)
    try:
        model, info = auto.from_pretrained(files.path, attn_implementation="eager", dtype=torch.float32,
                                           use_safetensors=True, output_loading_info=True, **_LOAD)
    except Exception as e:  # OSError, ValueError, RuntimeError (shapes), SafetensorError...: one message
        raise ValueError(f"The weights of {files.path} could not be loaded as {fam.label} "
                         f"({type(e).__name__}: {e}).") from e
    missing = sorted(k for k in info.get("missing_keys", ()) if not _HARMLESS_MISSING.search(k))
    if missing or info.get("mismatched_keys"):
        bad = missing or [str(k) for k in info["mismatched_keys"]]
        raise ValueError(f"The weights in {files.path} do not fit its config.json ({len(bad)} weights missing or of "
                         f"another shape, e.g. {', '.join(bad[:3])}): they would be random. Copy the model's "
                         "files again, all from the same model.")
    return model.eval()


def _own_bert(files: DirectoryFiles) -> torch.nn.Module:
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files.weights:
        state.update(load_file(str(path)))  # mapped from the file, not copied
    try:
        return bert.build(files.config, state)
    except ValueError as e:
        raise ValueError(f"The weights in {files.path} do not fit its config.json ({e}): they would be random. Copy "
                         "the model's files again, all from the same model.") from e


def _fit_inputs(tokenizer, model: torch.nn.Module, path: Path) -> None:
    """Make the tokenizer return only inputs the model's forward takes (a DistilBERT has no segment ids), and check
    that every id it can give has a row in the model's embedding."""
    params = inspect.signature(model.forward).parameters
    tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n in params] or ["input_ids"]
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(f"The tokenizer of {path} has {len(tokenizer)} tokens but the model embeds only {rows}: "
                         "they do not belong together. Copy the tokenizer that came with the model.")


def position_limit(model: torch.nn.Module) -> int | None:
    """Tokens the model's absolute position tables can embed (the smallest over its tables), or None without one.

    A table of ``n`` rows embeds ``n - offset`` tokens: ``offset`` is the table's own (BART's 2) or, when the table
    has a padding row, that row + 1 (RoBERTa's positions start after its padding index).
    """
    limits = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Embedding) and _POSITIONS.search(name):
            offset = getattr(module, "offset", None)
            if not isinstance(offset, int):
                offset = 0 if module.padding_idx is None else module.padding_idx + 1
            limits.append(module.num_embeddings - offset)
    return min(limits) if limits else None


def text_limit(model: torch.nn.Module, tokenizer) -> int:
    """Longest input in tokens: what the model embeds, the config's limit where positions are computed, the
    tokenizer's ``model_max_length`` when it states one, and :data:`MAX_TOKENS`."""
    limits = [MAX_TOKENS]
    embeds = position_limit(model)
    stated = getattr(model.config, "max_position_embeddings", None)
    limits.append(embeds if embeds is not None else stated if isinstance(stated, int) and stated > 0 else MAX_TOKENS)
    said = getattr(tokenizer, "model_max_length", None)
    if isinstance(said, int) and 0 < said < 10**6:  # unset is a huge number
        limits.append(said)
    limit = min(limits)
    if limit < 2:
        raise ValueError(f"The model reads at most {limit} token(s): there is no attention to show.")
    return limit


@contextlib.contextmanager
def refusing(name: str, what: str = "could not be set up") -> Iterator[None]:
    """Turn any exception but a ``ValueError`` into one naming the model and the cause (a family that fails this
    way cannot be shown; the message says how it failed)."""
    try:
        yield
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"{name} {what} ({type(e).__name__}: {e}).") from e


def check_run(model: AttentionModel, **inputs: object) -> None:
    """Run ``model`` once on ``inputs`` and :func:`check_attention`; any failure is a ``ValueError``."""
    with refusing(model.name, "failed on a check input"):
        result = model.run(**inputs)
    check_attention(model, result)


def check_attention(model: AttentionModel, result: AttentionResult) -> None:
    """The load-time check: refuse a model whose first run does not give one ``[head, query, key]`` map per layer
    of its config, with finite rows summing to 1, in the result and each of its parts (an encoder-decoder's)."""
    w = result.weights
    if w.shape[:2] != (model.n_layers, model.n_heads):
        raise ValueError(f"{model.name}: its attention came out as {w.shape[0]} layers x {w.shape[1]} heads, not "
                         f"the {model.n_layers} x {model.n_heads} of its config; attnviz cannot label it.")
    for part in (result, *result.parts.values()):
        if not np.isfinite(part.weights).all() or not np.allclose(part.weights.sum(-1), 1.0, atol=1e-4):
            raise ValueError(f"{model.name}: its attention weights are not finite rows that sum to 1 (damaged "
                             "weights?). Copy the model's files again.")
