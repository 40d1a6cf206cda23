"""Ground truth for image attention: on fresh synthetic shapes, the shipped shapes-vit classifies correctly and
its attention rollout (CLS row) peaks on a patch inside the object's box."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.analysis.patches import to_grid
from attnviz.train.shapes import CLASSES, SEED, generate, patch_in_box, shape_mask

ROOT = Path(__file__).resolve().parents[1]
FRESH_SEED = 20261121  # not one of the seeds the model was trained or tested on (SEED + 1, SEED + 2)


@pytest.fixture(scope="module")
def shapes():
    return attnviz.load_model("shapes-vit")


@pytest.fixture(scope="module")
def fresh():
    assert FRESH_SEED not in (SEED + 1, SEED + 2)
    return generate(200, FRESH_SEED)


@pytest.fixture(scope="module")
def results(shapes, fresh):
    return [shapes.run(image=Image.fromarray(im)) for im in fresh.images]


def test_generator_is_seeded_and_boxes_hold_the_object():
    a, b = generate(20, 7), generate(20, 7)
    np.testing.assert_array_equal(a.images, b.images)
    assert (a.boxes[:, 2] > a.boxes[:, 0]).all() and (a.boxes[:, 3] > a.boxes[:, 1]).all()
    assert ((a.boxes >= 0) & (a.boxes <= 32)).all()
    for kind in range(len(CLASSES)):
        assert shape_mask(kind, 16, 16, 6).sum() > 40


def test_rollout_argmax_patch_is_inside_the_object(results, fresh):
    hits = 0
    for r, box in zip(results, fresh.boxes, strict=True):
        peak = to_grid(attnviz.rollout(r.weights)[0], r.grid)  # [rows, cols]
        row, col = np.unravel_index(int(np.argmax(peak)), peak.shape)
        hits += patch_in_box(row, col, box)
    assert hits / len(results) >= 0.95, f"rollout peak inside the object for {hits} of {len(results)} images"


def test_classifies_fresh_shapes(results, fresh):
    predicted = [CLASSES.index(r.extras.prediction) for r in results]
    assert np.mean(np.array(predicted) == fresh.labels) >= 0.95


def test_shapes_model_shapes(results):
    r = results[0]
    assert r.weights.shape == (4, 4, 65, 65) and r.grid == (8, 8) and r.tokens[0] == "[CLS]"
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)


def test_recorded_accuracy():
    meta = json.loads((ROOT / "assets" / "models" / "shapes-vit.json").read_text())
    assert meta["test_accuracy"] >= 0.95
    assert meta["classes"] == CLASSES
