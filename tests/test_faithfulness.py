"""Deletion and insertion curves: a hand-computed case, the perturbations against the model run on the perturbed
input directly, and the full measurement on shapes-vit (SmolLM2's, through the Text page: tests/test_page_text.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.analysis import faithfulness as fa
from attnviz.models.faithful import METHODS, explanations, faithfulness
from attnviz.models.perturb import image_probabilities, text_probabilities

PROMPT = "The capital of France is the city of"


def test_hand_computed_curves():
    scores = np.array([0.1, 0.4, 0.3, 0.2])  # ranking: unit 1, 2, 3, 0
    worth = np.array([0.1, 0.2, 0.3, 0.4])  # a "model" whose probability is the worth of the units present
    counts = fa.step_counts(4)
    order = fa.ranking(scores)
    assert order.tolist() == [1, 2, 3, 0] and counts.tolist() == [0, 1, 2, 3, 4]
    deletion = fa.present_masks(order, counts, "deletion")
    insertion = fa.present_masks(order, counts, "insertion")
    assert deletion.tolist()[1] == [True, False, True, True] and insertion.tolist()[1] == [False, True, False, False]
    d = fa.curve("m", "deletion", counts, 4, deletion @ worth)
    i = fa.curve("m", "insertion", counts, 4, insertion @ worth)
    np.testing.assert_allclose(d.probabilities, [1.0, 0.8, 0.5, 0.1, 0.0])
    np.testing.assert_allclose(d.fractions, [0, 0.25, 0.5, 0.75, 1])
    # trapezoids of width 0.25: (1+.8)/2 + (.8+.5)/2 + (.5+.1)/2 + (.1+0)/2 = 1.9; x 0.25 x 100
    assert d.auc == pytest.approx(47.5)
    np.testing.assert_allclose(i.probabilities, [0.0, 0.2, 0.5, 0.9, 1.0])
    assert i.auc == pytest.approx(52.5)  # (.1 + .35 + .7 + .95) x 25
    worse = fa.curve("w", "deletion", counts, 4, fa.present_masks(fa.ranking(-worth), counts, "deletion") @ worth)
    np.testing.assert_allclose(worse.probabilities, [1.0, 0.9, 0.7, 0.4, 0.0])  # the least worth removed first
    assert worse.auc == pytest.approx(25 * (0.95 + 0.8 + 0.55 + 0.2))  # 62.5
    assert fa.best_method([d, i, worse], "deletion") == "m" and fa.best_method([d, worse], "insertion") is None
    rows = fa.curve_rows([d])
    assert len(rows) == 5 and rows[2] == {"method": "m", "mode": "deletion", "step": 2, "fraction": 0.5,
                                          "probability": 0.5, "auc": pytest.approx(47.5)}


def test_steps_and_rankings():
    assert fa.step_counts(200, 10).tolist() == list(range(0, 201, 20))
    assert fa.step_counts(3, 10).tolist() == [0, 1, 2, 3]
    assert fa.ranking(np.array([1.0, 2.0, 2.0, 0.0])).tolist() == [1, 2, 0, 3]  # ties keep their order
    with pytest.raises(ValueError, match="finite"):
        fa.ranking(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="mode"):
        fa.present_masks(np.arange(3), np.arange(4), "sideways")
    with pytest.raises(ValueError, match="at least one"):
        fa.step_counts(0)


@pytest.fixture(scope="module")
def shapes():
    return attnviz.load_model("shapes-vit")


@torch.inference_mode()
def test_image_perturbation_is_the_model_on_the_grey_patched_image(shapes):
    pixels = shapes.inputs("assets/examples/shapes-cross.png")[0]
    present = np.ones((3, 64), bool)
    present[1, [0, 9, 63]] = False
    present[2] = False
    calls = []
    got = image_probabilities(shapes, pixels, present, target=3, progress=lambda done, total: calls.append((done,
                                                                                                           total)))
    assert calls == [(3, 3)]  # one batch
    direct = pixels.clone()
    for unit in (0, 9, 63):
        r, c = divmod(unit, 8)
        direct[..., 4 * r:4 * r + 4, 4 * c:4 * c + 4] = 0  # the normalisation mean
    probs = [torch.softmax(shapes.model(x), -1)[0, 3] for x in (pixels, direct, torch.zeros_like(pixels))]
    np.testing.assert_allclose(got, [float(p) for p in probs], atol=1e-6)
    extras = shapes.run(image="assets/examples/shapes-cross.png").extras
    assert got[0] == pytest.approx(extras.probabilities["cross"], abs=1e-6)


def test_shapes_curves(shapes):
    f = faithfulness(shapes, image="assets/examples/shapes-triangle.png", max_steps=16)
    ex = f.explanations
    assert ex.label == "triangle" and len(ex.units) == 64 and set(ex.scores) == set(METHODS) and not ex.skipped
    assert len(f.curves) == 10 and set(f.best) == {"deletion", "insertion"}
    assert f.best["deletion"] == min((c for c in f.curves if c.mode == "deletion"), key=lambda c: c.auc).method
    full = [c for c in f.curves if c.mode == "deletion"]
    for c in f.curves:
        assert c.fractions[0] == 0 and c.fractions[-1] == 1 and len(c.fractions) == 17  # 0, 4, 8 .. 64 patches
        assert 0 <= c.auc <= 100
    # every deletion curve starts at the unperturbed probability and ends on the all-grey image, insertion mirrors it
    for c in full:
        assert c.probabilities[0] == pytest.approx(ex.probability, abs=1e-5)
    ends = {round(c.probabilities[-1], 6) for c in full} | {round(c.probabilities[0], 6) for c in f.curves
                                                             if c.mode == "insertion"}
    assert len(ends) == 1
    rel = shapes.relevance(image="assets/examples/shapes-triangle.png")
    np.testing.assert_array_equal(ex.scores["relevance"], rel.scores.ravel())


@pytest.fixture(scope="module")
def smollm2():
    return attnviz.load_model("smollm2-135m")


@torch.inference_mode()
def test_text_perturbation_drops_tokens(smollm2):
    ids = smollm2.tokenizer(PROMPT)["input_ids"]
    present = np.ones((2, len(ids) - 1), bool)
    present[1, [0, 3]] = False
    got = text_probabilities(smollm2, ids, present, target=ids[2])
    kept = [t for j, t in enumerate(ids) if j not in (0, 3)]
    want = [torch.softmax(smollm2.model(input_ids=torch.tensor([s])).logits[0, -1], -1)[ids[2]] for s in (ids, kept)]
    np.testing.assert_allclose(got, [float(p) for p in want], atol=1e-5)


def test_refusals(minilm, smollm2):
    with pytest.raises(ValueError, match="no prediction"):
        explanations(minilm, text="a sentence")
    with pytest.raises(ValueError, match="no prediction"):
        explanations(attnviz.load_model("dinov2-small"), image="assets/examples/cat.jpg")
    with pytest.raises(ValueError, match="at least two tokens"):
        explanations(smollm2, text="Hello")
    with pytest.raises(ValueError, match="Unknown methods"):
        explanations(smollm2, text=PROMPT, methods=("saliency",))


def test_a_family_alti_does_not_cover_is_measured_without_it(local_models):
    gpt2 = attnviz.load_model(local_models / "my-gpt2")  # a tiny random GPT-2: ALTI has no adapter for it
    f = faithfulness(gpt2, text="A small local model.", methods=("attention", "alti"), modes=("deletion",))
    assert set(f.explanations.scores) == {"attention"} and "ALTI is implemented for" in f.explanations.skipped["alti"]
    assert [c.method for c in f.curves] == ["attention"] and f.best["deletion"] == "attention"
