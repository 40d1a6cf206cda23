"""The files of a local Hugging Face model directory, checked before anything is loaded.

A directory is refused with one ``ValueError`` saying what is wrong and what to do when its ``config.json`` is
missing or unreadable, when its weights are not safetensors (a ``pytorch_model.bin`` is a pickle, which can run
code when read: attnviz never unpickles), or when a safetensors file is damaged (its header does not describe the
file: cut short, or not safetensors at all). Nothing here imports torch or transformers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG = "config.json"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
"""Checkpoint files that hold pickles (``pytorch_model.bin``, ``*.pt``...)."""
OTHER_WEIGHTS = ("tf_model.h5", "flax_model.msgpack", "model.onnx", "model.gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model", "source.spm")
PROCESSOR_FILE = "preprocessor_config.json"
CONVERT_HINT = ("Save it as safetensors where it was made: model.save_pretrained(directory) writes "
                "model.safetensors (the default of transformers since 4.35).")


@dataclass(frozen=True)
class DirectoryFiles:
    """What a model directory holds, as far as attnviz needs to know before loading it."""

    path: Path
    config: dict[str, Any]      # config.json as read
    weights: tuple[Path, ...]   # safetensors files (every shard), each checked
    has_tokenizer: bool         # a tokenizer file of some kind is present
    has_processor: bool         # preprocessor_config.json is present


def read_directory(path: Path) -> DirectoryFiles:
    """Check a model directory's files (nothing is loaded).

    Raises:
        ValueError: not a directory, no readable ``config.json``, no safetensors weights (pickle or other formats
            only, or none), or a damaged safetensors file.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory: give the folder of a Hugging Face model (with config.json).")
    config = read_config(path)
    return DirectoryFiles(path=path, config=config, weights=weight_files(path),
                          has_tokenizer=any((path / f).is_file() for f in TOKENIZER_FILES),
                          has_processor=(path / PROCESSOR_FILE).is_file())


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a model directory, as a dict.

    Raises:
        ValueError: missing, not JSON, not a JSON object, or without a ``model_type``.
    """
    file = path / CONFIG
    if not file.is_file():
        raise ValueError(f"{path} is not a Hugging Face model directory: it has no {CONFIG}.")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{file} cannot be read as JSON ({e}): copy the model's config.json again.") from e
    if not isinstance(config, dict):
        raise ValueError(f"{file} is not a JSON object: copy the model's config.json again.")
    if not isinstance(config.get("model_type"), str) or not config["model_type"]:
        raise ValueError(f"{file} names no model_type, so attnviz cannot tell which architecture it is.")
    return config


def weight_files(path: Path) -> tuple[Path, ...]:
    """The safetensors weight files of a directory (every shard of a sharded checkpoint), each with a sound header.

    Raises:
        ValueError: only pickle checkpoints, only other formats, no weights, a shard missing, or a damaged file.
    """
    index = path / SAFETENSORS_INDEX
    if index.is_file():
        files = _shards(index)
    else:
        files = tuple(sorted(p for p in path.glob("*.safetensors") if p.is_file()))
    if not files:
        pickles = sorted(p.name for p in path.iterdir() if p.is_file() and p.name.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise ValueError(f"{path} holds its weights only as a pickle checkpoint ({', '.join(pickles)}). attnviz "
                             "never reads pickles (reading one can run code hidden in it); it reads safetensors. "
                             + CONVERT_HINT)
        others = [f for f in OTHER_WEIGHTS if (path / f).is_file()]
        raise ValueError(f"{path} has no model.safetensors" + (f" (only {', '.join(others)})" if others else "")
                         + ": attnviz reads a model's weights from safetensors. " + CONVERT_HINT)
    for file in files:
        check_safetensors(file)
    return files


def _shards(index: Path) -> tuple[Path, ...]:
    """The shard files named by a ``model.safetensors.index.json``."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{index} is damaged ({e}): copy it again with the model's files.") from e
    bad = [n for n in names if not isinstance(n, str) or Path(n).name != n]
    if bad or not names:
        raise ValueError(f"{index} names no shards or names files outside its folder ({bad[:3]}).")
    missing = [n for n in names if not (index.parent / n).is_file()]
    if missing:
        raise ValueError(f"{index.parent} lacks weight shards named in {index.name}: {', '.join(missing[:5])}.")
    return tuple(index.parent / n for n in names)


def check_safetensors(file: Path) -> None:
    """Read a safetensors file's header (not its tensors) and check that it describes the file.

    Raises:
        ValueError: not readable as safetensors (cut short, overwritten, another format), with safetensors' reason.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="numpy") as f:
            f.keys()
    except Exception as e:  # SafetensorError is no ValueError; any failure to read the header means damage
        raise ValueError(f"The weights file {file.name} in {file.parent} is damaged or not safetensors ({e}). "
                         "Copy it again with the model's other files.") from e
