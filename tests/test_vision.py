"""The image models on real weights (attnviz.models.vision and its families): DINOv2 against its own ONNX graph,
the tiny ViTs' predictions, shapes, threads, the command line. (DINOv2's weight cache under faults:
test_dir_cache.py.)"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.models import dinov2 as dinov2_module
from attnviz.models.tiny_vit import TinyViT
from attnviz.models.vision import IMAGENET_MEAN, IMAGENET_STD, to_tensor

ROOT = Path(__file__).resolve().parents[1]


EXAMPLES = ROOT / "assets" / "examples"


MODELS = ROOT / "assets" / "models"


@pytest.fixture(scope="module")
def dinov2():
    return attnviz.load_model("dinov2-small")


@pytest.fixture(scope="module")
def fashion():
    return attnviz.load_model("vit-fashion")


@pytest.fixture(scope="module")
def shapes():
    return attnviz.load_model("shapes-vit")


@pytest.fixture(scope="module")
def cat():
    return attnviz.load_image(EXAMPLES / "cat.jpg")


def onnx_softmax_outputs(x: np.ndarray) -> list[np.ndarray]:
    """The 12 attention Softmax outputs of the ONNX graph itself, evaluated by ONNX's reference runtime
    (``onnx.reference``, NumPy; no onnxruntime), on the part of the graph they depend on."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(dinov2_module.onnx_path()))
    g = model.graph
    wanted = [n.output[0] for n in g.node if n.op_type == "Softmax" and n.name.startswith("/backbone/encoder/")]
    assert len(wanted) == 12
    producer = {o: n for n in g.node for o in n.output}
    keep, stack = set(), list(wanted)
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node.name not in keep:
            keep.add(node.name)
            stack.extend(i for i in node.input if i)
    nodes = [n for n in g.node if n.name in keep]
    used = {i for n in nodes for i in n.input}
    sub = helper.make_model(
        helper.make_graph(nodes, "attention", list(g.input),
                          [helper.make_tensor_value_info(w, TensorProto.FLOAT, None) for w in wanted],
                          [t for t in g.initializer if t.name in used]),
        opset_imports=model.opset_import)
    return ReferenceEvaluator(sub).run(None, {"input_image": x})


def test_onnx_input_size_is_fixed_at_224():
    import onnx

    dims = onnx.load(str(dinov2_module.onnx_path()), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, dinov2_module.IMAGE_SIZE, dinov2_module.IMAGE_SIZE]


def test_dinov2_attention_equals_the_onnx_graph(dinov2, cat):
    result = dinov2.run(image=cat)
    x = to_tensor(cat, dinov2_module.IMAGE_SIZE, IMAGENET_MEAN, IMAGENET_STD).numpy()
    reference = np.stack([o[0] for o in onnx_softmax_outputs(x)])  # [layer, head, query, key]
    assert reference.shape == result.weights.shape == (12, 6, 257, 257)
    assert np.abs(result.weights - reference).max() <= 1e-4


def test_dinov2_result_shape_and_labels(dinov2, cat):
    r = dinov2.run(image=cat)
    assert r.kind == "image" and r.model == "dinov2-small" and r.grid == (16, 16)
    assert r.weights.dtype == np.float32 and r.weights.shape == (12, 6, 257, 257)
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)
    assert r.tokens[0] == "[CLS]" and r.tokens[1] == "p0,0" and r.tokens[17] == "p1,0" and r.tokens[-1] == "p15,15"
    assert r.special[0] and not r.special[1:].any()
    assert (dinov2.n_layers, dinov2.n_heads) == (12, 6)


def test_same_image_any_format_same_attention(dinov2, tmp_path):
    im = Image.open(EXAMPLES / "cat.jpg").convert("RGB")
    im.save(tmp_path / "cat.png")
    a = dinov2.run(image=im).weights
    b = dinov2.run(image=tmp_path / "cat.png").weights
    c = dinov2.run(image=(tmp_path / "cat.png").read_bytes()).weights
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("name", ["dinov2", "shapes"])
def test_concurrent_runs_match_sequential(name, request):
    model = request.getfixturevalue(name)
    images = [attnviz.load_image(EXAMPLES / f) for f in ("shapes-cross.png", "coffee.jpg")]
    expected = [model.run(image=im).weights for im in images]
    jobs = [0, 1] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda i: (i, model.run(image=images[i]).weights), jobs))
    for i, w in got:
        np.testing.assert_allclose(w, expected[i], atol=1e-6)


def test_tiny_models_share_one_class(fashion, shapes):
    assert type(fashion.model) is TinyViT and type(shapes.model) is TinyViT
    assert fashion.kind == shapes.kind == "image"


@pytest.mark.parametrize("file, label", [("fashion-ankle-boot.png", "Ankle boot"), ("fashion-trouser.png", "Trouser"),
                                         ("fashion-bag.png", "Bag")])
def test_vit_fashion_predicts_examples(fashion, file, label):
    r = fashion.run(image=EXAMPLES / file)
    assert r.extras.prediction == label
    probs = r.extras.probabilities
    assert len(probs) == 10 and abs(sum(probs.values()) - 1) < 1e-5 and max(probs, key=probs.get) == label
    assert r.weights.shape == (4, 4, 50, 50) and r.grid == (7, 7) and r.tokens[-1] == "p6,6"
    np.testing.assert_allclose(r.weights.sum(-1), 1.0, atol=1e-5)


def test_vit_fashion_inverts_light_backgrounds(fashion):
    boot = Image.open(EXAMPLES / "fashion-ankle-boot.png").convert("RGB")
    dark, light = fashion.run(image=boot), fashion.run(image=Image.eval(boot, lambda v: 255 - v))
    assert not dark.extras.inverted and light.extras.inverted
    np.testing.assert_allclose(dark.weights, light.weights, atol=1e-5)


def test_vit_fashion_recorded_accuracy():
    meta = json.loads((MODELS / "vit-fashion.json").read_text())
    assert meta["test_accuracy"] >= 0.90 and meta["test_images"] == 10_000


def test_vit_fashion_accuracy_holds_on_the_test_set(fashion):
    """Re-measure the shipped weights on Fashion-MNIST test images (needs the Debian dataset package)."""
    from attnviz.train import vit_fashion

    try:
        x, y = vit_fashion.read_split("t10k")
    except ValueError as e:
        pytest.skip(str(e))
    meta = fashion.meta
    xt = vit_fashion.to_inputs(x, meta["mean"][0], meta["std"][0])
    with torch.inference_mode():
        pred = torch.cat([fashion.model(xt[i:i + 2000]).argmax(-1) for i in range(0, len(xt), 2000)]).numpy()
    accuracy = float((pred == y).mean())
    assert accuracy >= 0.90
    assert abs(accuracy - meta["test_accuracy"]) < 0.005


def test_recorder_captures_the_real_softmax(shapes):
    """The recorded layer-0 weights equal softmax(q k^T / sqrt(d)) recomputed from the model's own parameters."""
    m = shapes.model
    im = attnviz.load_image(EXAMPLES / "shapes-triangle.png")
    x = to_tensor(im, m.cfg.image_size, shapes.meta["mean"], shapes.meta["std"], m.cfg.channels)
    with torch.inference_mode():
        tokens = m.patch(x).flatten(2).transpose(1, 2)
        h = torch.cat([m.cls.expand(1, -1, -1), tokens], 1) + m.pos
        attn = m.blocks[0].attn
        q, k, _ = attn.qkv(m.blocks[0].norm1(h)).view(1, h.shape[1], 3, m.cfg.heads, -1).permute(2, 0, 3, 1, 4)
        expected = torch.softmax(q @ k.transpose(-2, -1) * attn.scale, -1)[0].numpy()
    np.testing.assert_allclose(shapes.run(image=im).weights[0], expected, atol=1e-6)


def test_cli_exports_an_image(tmp_path, dinov2, cat):
    from attnviz.cli import main

    out = tmp_path / "out"
    assert main(["export", "--model", "dinov2-small", "--image", str(EXAMPLES / "cat.jpg"), "--out", str(out)]) == 0
    w = np.load(out / "weights.npy")
    np.testing.assert_array_equal(w, dinov2.run(image=cat).weights)  # same numbers as the API
    doc = json.loads((out / "tokens.json").read_text())
    assert doc["grid"] == [16, 16] and doc["tokens"][0] == "[CLS]" and len(doc["tokens"]) == 257
    assert Image.open(out / "grid.png").size[0] > 6 * 64
    assert len(list(out.glob("layer*_head*.png"))) == 72


def test_cli_rejects_a_bad_image(tmp_path, capsys):
    from attnviz.cli import main

    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["export", "--model", "dinov2-small", "--image", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not an image" in capsys.readouterr().err
