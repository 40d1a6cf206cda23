"""ALTI (Ferrando et al. 2022) against a brute-force computation: every ``T_i(x_j)`` vector built on its own from the
model's own modules (value and output projections, norms), ``y_i`` taken from the model's own attention block, then
``c_ij = max(0, ‖y_i‖₁ − ‖y_i − T_i(x_j)‖₁)`` row-normalised; and the invariants of the result."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.analysis.alti import LayerParts, alti_rollup, decompose, layer_contributions
from attnviz.models import alti as alti_mod
from attnviz.models.alti import alti
from tests.test_relevance import random_image, tiny_model

TEXT = "The cat sat on the mat."


def brute_contributions(vectors: list[list[torch.Tensor]], y: torch.Tensor) -> np.ndarray:
    """``vectors[i][j] = T_i(x_j)`` ``[dim]``, ``y`` ``[query, dim]`` -> normalised ``c`` ``[query, key]``."""
    n = len(vectors)
    c = np.zeros((n, len(vectors[0])))
    for i in range(n):
        for j, t in enumerate(vectors[i]):
            c[i, j] = max(0.0, float(y[i].abs().sum() - (y[i] - t).abs().sum()))
    return c / c.sum(axis=1, keepdims=True)


def head_output(o_proj: torch.nn.Linear, v: torch.Tensor, h: int, n_heads: int) -> torch.Tensor:
    """One head's value vector ``v`` ``[head_dim]`` through the output projection, its bias left out."""
    slot = torch.zeros(o_proj.in_features)
    d = o_proj.in_features // n_heads
    slot[h * d:(h + 1) * d] = v
    return o_proj.weight @ slot


@torch.inference_mode()
def test_tiny_vit_equals_brute_force():
    m = tiny_model(11)
    image = random_image(12)
    got = alti(m, image=image)
    vit = m.model
    x = vit.embed(m.inputs(image)[0])  # [1, token, dim]
    want = []
    for block in vit.blocks:
        att = block.attn
        n, dim = x.shape[1:]
        hd = dim // att.heads
        y = (x + att(block.norm1(x)))[0]  # the block's own attention output with the residual
        q, k, v = att.qkv(block.norm1(x))[0].view(n, 3, att.heads, hd).unbind(1)  # [token, head, head_dim]
        alpha = torch.softmax(torch.einsum("ihd,jhd->hij", q, k) * att.scale, -1)
        vectors = [[(x[0, j] if i == j else 0) + sum(alpha[h, i, j] * head_output(att.proj, v[j, h], h, att.heads)
                                                      for h in range(att.heads)) for j in range(n)] for i in range(n)]
        want.append(brute_contributions(vectors, y))
        x = block(x)
    np.testing.assert_allclose(got.layers, np.stack(want), atol=2e-5)
    manual = np.eye(len(got.tokens))
    for c in want:
        manual = c @ manual
    np.testing.assert_allclose(got.rollup, manual, atol=2e-5)
    assert got.tokens[0] == "[CLS]" and got.rollup.shape == (17, 17)


@torch.inference_mode()
def test_minilm_post_norm_equals_brute_force(minilm):
    got = alti(minilm, text=TEXT)
    enc = minilm.tokenizer(TEXT, return_tensors="pt")
    out = minilm.model(**enc, output_hidden_states=True, output_attentions=True)
    for layer in (0, 5):
        block = minilm.model.encoder.layer[layer]
        x, alpha = out.hidden_states[layer][0], out.attentions[layer][0]  # [token, dim], [head, query, key]
        att, dense, ln = block.attention.self, block.attention.output.dense, block.attention.output.LayerNorm
        n_heads, n = alpha.shape[:2]
        hd = x.shape[1] // n_heads
        y = block.attention(x[None])[0][0]  # LN(x + dense(context)): the block's own output
        u = x + dense(torch.einsum("hij,jhd->ihd", alpha, att.value(x).view(n, n_heads, hd)).reshape(n, -1))
        sigma = torch.sqrt(u.var(-1, unbiased=False) + ln.eps)  # what the layer norm divides each row by
        vectors = []
        for i in range(n):
            row = []
            for j in range(n):
                vj = att.value(x[j]).view(n_heads, hd)  # x_j W_V + b_V, per head
                v = (x[j] if i == j else 0) + sum(alpha[h, i, j] * head_output(dense, vj[h], h, n_heads)
                                                  for h in range(n_heads))
                row.append(ln.weight * (v - v.mean()) / sigma[i])
            vectors.append(row)
        np.testing.assert_allclose(got.layers[layer], brute_contributions(vectors, y), atol=2e-5)


@torch.inference_mode()
def test_smollm2_equals_brute_force():
    m = attnviz.load_model("smollm2-135m")
    got = alti(m, text=TEXT)
    enc = m.tokenizer(TEXT, return_tensors="pt")
    out = m.model(**enc, output_hidden_states=True, output_attentions=True)
    cfg = m.model.config
    group = cfg.num_attention_heads // cfg.num_key_value_heads
    for layer in (0, 29):
        block = m.model.model.layers[layer]
        x, alpha = out.hidden_states[layer][0], out.attentions[layer][0]
        n_heads, n = alpha.shape[:2]
        hd = cfg.hidden_size // n_heads
        v = block.self_attn.v_proj(block.input_layernorm(x)).view(n, -1, hd)  # [token, kv_head, head_dim]
        o = block.self_attn.o_proj
        per = [[head_output(o, v[j, h // group], h, n_heads) for h in range(n_heads)] for j in range(n)]
        vectors = [[(x[j] if i == j else 0) + sum(alpha[h, i, j] * per[j][h] for h in range(n_heads))
                    for j in range(n)] for i in range(n)]
        y = torch.stack([sum(vectors[i]) for i in range(n)])  # no biases in Llama's attention
        nxt = y + block.mlp(block.post_attention_layernorm(y))  # the decomposition rebuilds the next layer's input
        if layer + 1 < len(out.hidden_states) - 1:
            torch.testing.assert_close(nxt, out.hidden_states[layer + 1][0], atol=1e-3, rtol=1e-5)
        np.testing.assert_allclose(got.layers[layer], brute_contributions(vectors, y), atol=2e-5)
    upper = np.triu(np.ones((n, n), bool), k=1)
    assert (got.layers[:, upper] == 0).all() and (got.rollup[upper] == 0).all()


@torch.inference_mode()
def test_dinov2_output_rebuilds_the_block():
    m = attnviz.load_model("dinov2-small")
    assert alti_mod.family(m) == "dinov2"
    from attnviz.images import load_image
    from attnviz.models.dinov2 import IMAGE_SIZE
    from attnviz.models.vision import IMAGENET_MEAN, IMAGENET_STD, to_tensor

    x = to_tensor(load_image("assets/examples/cat.jpg"), IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD)
    out = m.model(pixel_values=x, output_hidden_states=True, output_attentions=True)
    parts = list(alti_mod.dinov2_parts(m.model, out.hidden_states[:2], out.attentions[:2]))
    for layer, p in enumerate(parts):  # the decomposition, through the block's MLP, is the next layer's input
        block = m.model.encoder.layer[layer]
        y = torch.from_numpy(decompose(p).output)[None]
        nxt = y + block.layer_scale2(block.mlp(block.norm2(y)))
        torch.testing.assert_close(nxt, out.hidden_states[layer + 1], atol=1e-4, rtol=1e-4)
    c = layer_contributions(parts[0])
    assert c.shape == (257, 257) and (c >= 0).all()
    np.testing.assert_allclose(c.sum(-1), 1, atol=1e-5)


def check_invariants(a) -> None:
    assert a.layers.dtype == np.float32 and (a.layers >= 0).all() and (a.rollup >= 0).all()
    np.testing.assert_allclose(a.layers.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(a.rollup.sum(-1), 1, atol=1e-5)
    assert np.isfinite(a.rollup).all()


def test_invariants_and_blocks_on_minilm(minilm):
    a = alti(minilm, text="A longer sentence, so that the queries are split into several blocks of work.")
    check_invariants(a)
    np.testing.assert_allclose(a.rollup, alti_rollup(a.layers))
    assert a.tokens[0] == "[CLS]" and a.tokens == minilm.run(text="A longer sentence, so that the queries are split "
                                                                   "into several blocks of work.").tokens


def test_query_blocks_do_not_change_the_result():
    rng = np.random.default_rng(3)
    n, dim, heads = 9, 6, 2
    parts = LayerParts(rng.normal(size=(n, dim)).astype(np.float32),
                       rng.dirichlet(np.ones(n), size=(heads, n)).astype(np.float32),
                       rng.normal(size=(heads, n, dim)).astype(np.float32), rng.normal(size=dim).astype(np.float32))
    whole = layer_contributions(parts)
    for floats in (1, n * dim, 4 * n * dim):
        np.testing.assert_allclose(layer_contributions(parts, block_floats=floats), whole, atol=1e-5)
    d = decompose(parts)
    np.testing.assert_allclose(d.vectors.sum(axis=1) + parts.bias, d.output, atol=1e-5)


def test_a_row_with_no_positive_contribution_keeps_the_token():
    n, dim = 2, 2
    x = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    parts = LayerParts(x, np.full((1, n, n), 0.5, np.float32), np.zeros((1, n, dim), np.float32),
                       np.array([-1.0, 0.0], np.float32))  # y_0 = x_0 + b = 0: nothing is closer than nothing
    c = layer_contributions(parts)
    np.testing.assert_allclose(c.sum(-1), 1)
    assert c[0, 0] == 1 and c[0, 1] == 0


def test_sentence_pairs_and_the_time_estimate(minilm):
    pair = alti(minilm, text="Where is the cat?", text_pair="It sleeps.")
    assert pair.tokens == minilm.run(text="Where is the cat?", text_pair="It sleeps.").tokens
    check_invariants(pair)
    cfg = minilm.model.config
    assert alti_mod.work(minilm, 10) == cfg.num_hidden_layers * cfg.num_attention_heads * 100 * cfg.hidden_size
    assert 0 < alti_mod.estimate_seconds(minilm, 10) < alti_mod.estimate_seconds(minilm, 500)
    assert alti_mod.work(tiny_model(), 17) == 3 * 2 * 17 ** 2 * 16


def test_refusals(monkeypatch, minilm):
    with pytest.raises(ValueError, match="ALTI is implemented for"):
        alti(attnviz.load_model("date-seq2seq"), text="1 March 2020")
    with pytest.raises(ValueError, match="No image"):
        alti(tiny_model())
    monkeypatch.setattr(alti_mod, "MAX_WORK", 1e6)
    with pytest.raises(ValueError, match="up to .* tokens: shorten"):
        alti(minilm, text=TEXT)
    with pytest.raises(ValueError, match="shape|fit"):
        alti_rollup(np.ones((2, 3, 4)))
