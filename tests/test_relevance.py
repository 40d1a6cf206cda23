"""Gradient-weighted relevance (Chefer et al. 2021): against a plain re-implementation of the rule on a tiny random
ViT (hooks, ``retain_grad`` and ``backward``, as the authors' notebook does), its invariants, and SmolLM2's next
token."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.analysis.relevance import fuse_gradients, relevance_rollup
from attnviz.models import relevance as relevance_mod
from attnviz.models.tiny_image import TinyViTImageModel
from attnviz.models.tiny_vit import TinyViT, TinyViTConfig

PROMPT = "The capital of France is"


def tiny_model(seed: int = 0, channels: int = 3, stem: str = "linear") -> TinyViTImageModel:
    """A TinyViT with random weights (16 px, 4 px patches, 3 layers x 2 heads) as an attnviz image model."""
    torch.manual_seed(seed)
    cfg = TinyViTConfig(image_size=16, patch_size=4, channels=channels, n_classes=5, dim=16, depth=3, heads=2,
                        stem=stem)
    meta = {"classes": [f"c{i}" for i in range(5)], "mean": [0.5] * channels, "std": [0.25] * channels}
    return TinyViTImageModel("tiny-random", TinyViT(cfg).eval(), meta)


def random_image(seed: int, size: int = 16) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def reference_relevance(vit: TinyViT, x: torch.Tensor, target: int | None) -> tuple[np.ndarray, int]:
    """Chefer et al.'s ViT notebook, written out: keep each block's attention with its gradient, backward the target
    logit, then ``R = I; R += mean_h((grad * cam).clamp(min=0)) @ R`` block by block; return ``R[0, 1:]``."""
    maps = []

    def keep(module, args, output):
        output.retain_grad()
        maps.append(output)

    handles = [b.attn.attend.register_forward_hook(keep) for b in vit.blocks]
    try:
        output = vit(x)
        index = int(output.argmax()) if target is None else target
        one_hot = torch.zeros_like(output)
        one_hot[0, index] = 1
        vit.zero_grad()
        (one_hot * output).sum().backward()
    finally:
        for h in handles:
            h.remove()
    n = maps[0].shape[-1]
    r = torch.eye(n)
    for cam in maps:
        grad = cam.grad[0]
        avg = (grad * cam[0]).clamp(min=0).mean(dim=0)
        r = r + avg @ r
    return r[0, 1:].detach().numpy(), index


@pytest.mark.parametrize("stem", ["linear", "conv"])
@pytest.mark.parametrize("target", [None, 3])
def test_equals_the_rule_written_out_on_a_tiny_vit(stem, target):
    m = tiny_model(1, stem=stem)
    image = random_image(2)
    rel = m.relevance(image=image, target=target)
    copy = TinyViT(m.cfg)
    copy.load_state_dict(m.model.state_dict())  # the reference mutates its own model (hooks, .grad), not ours
    want, index = reference_relevance(copy.eval(), m.inputs(image)[0], target)
    assert rel.target == index and rel.scores.shape == m.grid
    np.testing.assert_allclose(rel.scores.ravel(), want, rtol=1e-5, atol=1e-6)


def test_leaves_the_shared_model_as_it_was():
    m = tiny_model(3)
    before = {n: (p.requires_grad, p.detach().clone()) for n, p in m.model.named_parameters()}
    m.relevance(image=random_image(4))
    for n, p in m.model.named_parameters():
        assert p.grad is None and p.requires_grad == before[n][0] and torch.equal(p, before[n][1])
    r = m.run(image=random_image(4))  # the recorder still records detached weights for run
    assert r.weights.shape == (3, 2, 17, 17)


def test_target_probability_and_label_agree_with_the_prediction():
    m = tiny_model(5)
    image = random_image(6)
    rel = m.relevance(image=image)
    extras = m.run(image=image).extras
    assert rel.label == extras.prediction
    assert rel.probability == pytest.approx(extras.probabilities[rel.label], abs=1e-6)
    other = (rel.target + 1) % 5
    by_index, by_name = m.relevance(image=image, target=other), m.relevance(image=image, target=f"c{other}")
    np.testing.assert_array_equal(by_index.scores, by_name.scores)
    assert by_name.label == f"c{other}" and by_name.probability == pytest.approx(extras.probabilities[f"c{other}"])
    assert (rel.scores >= 0).all() and len(rel.tokens) == 16


@pytest.mark.parametrize("bad", [5, -1, "dog", 1.5, True])
def test_bad_targets_are_refused(bad):
    with pytest.raises(ValueError, match="target|class"):
        tiny_model().relevance(image=random_image(0), target=bad)


def test_concurrent_calls_match_sequential():
    m = tiny_model(7)
    images = [random_image(i) for i in range(6)]
    want = [m.relevance(image=im).scores for im in images]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        got[i] = m.relevance(image=images[i]).scores

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(6):
        np.testing.assert_array_equal(got[i], want[i])


def test_rule_invariants():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(5), size=(2, 3, 5))  # [layer, head, query, key]
    g = rng.normal(size=w.shape)
    r = relevance_rollup(w, g)
    assert r.shape == (5, 5) and (r >= 0).all() and (np.diag(r) >= 1).all()
    np.testing.assert_allclose(relevance_rollup(w, -np.abs(g)), np.eye(5))  # nothing positive: identity
    manual = np.eye(5)
    for a in np.clip(w * g, 0, None).mean(axis=1):
        manual = manual + a @ manual
    np.testing.assert_allclose(r, manual, rtol=1e-5)
    assert fuse_gradients(w, g).shape == (2, 5, 5)
    with pytest.raises(ValueError, match="shape"):
        relevance_rollup(w, g[:, :, :4])
    with pytest.raises(ValueError, match="finite"):
        relevance_rollup(w, np.full_like(g, np.nan))


def test_shapes_vit_relevance_is_a_patch_map():
    m = attnviz.load_model("shapes-vit")
    rel = m.relevance(image="assets/examples/shapes-cross.png")
    assert rel.scores.shape == (8, 8) and rel.label == "cross" and 0.5 < rel.probability <= 1


@pytest.fixture(scope="module")
def smollm2():
    return attnviz.load_model("smollm2-135m")


def test_smollm2_next_token(smollm2):
    rel = smollm2.relevance(text=PROMPT)
    enc = smollm2.tokenizer(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        p = torch.softmax(smollm2.model(**enc).logits[0, -1], -1)
    assert rel.target == int(p.argmax()) and rel.label == " Paris"
    assert rel.probability == pytest.approx(float(p.max()), abs=1e-5)
    assert rel.tokens == smollm2.run(text=PROMPT).tokens and rel.scores.shape == (len(rel.tokens),)
    assert (rel.scores >= 0).all() and rel.scores[-1] >= 1  # the identity R starts from
    london = smollm2.tokenizer(" London", add_special_tokens=False)["input_ids"]
    other = smollm2.relevance(ids=enc["input_ids"][0].tolist(), target=" London")
    assert [other.target] == london and other.label == " London"
    assert other.probability == pytest.approx(float(p[london[0]]), abs=1e-6)


def test_smollm2_refusals(smollm2, minilm):
    with pytest.raises(ValueError, match="one token"):
        smollm2.relevance(text=PROMPT, target=" Paris and London")
    long = " ".join(["word"] * (relevance_mod.TEXT_MAX_TOKENS + 5))
    with pytest.raises(ValueError, match=f"up to {relevance_mod.TEXT_MAX_TOKENS} tokens"):
        smollm2.relevance(text=long)
    with pytest.raises(ValueError, match="causal"):
        minilm.relevance(text=PROMPT)
