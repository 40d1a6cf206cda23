"""attnviz.models.recorder: the heads of attnviz's own models, recomputed from the recorded queries, keys and masks
(PartsRecorder), equal the weights their softmax modules computed in the same forward (AttentionRecorder), within
1e-6: the tiny ViTs and every attention of the encoder-decoder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.recorder import AttentionRecorder
from attnviz.models.seq2seq import Vocab
from attnviz.models.vision import to_tensor
from attnviz.result import block_max

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
EXACT = 1e-6


@pytest.mark.parametrize("name, example", [("shapes-vit", "shapes-triangle.png"),
                                           ("vit-fashion", "fashion-ankle-boot.png")])
def test_tiny_vit_heads_equal_their_softmax(name, example):
    m = attnviz.load_model(name)
    image = attnviz.load_image(EXAMPLES / example)
    r = m.run(image=image)
    if r.extras.inverted:
        from PIL import ImageOps

        image = ImageOps.invert(image.convert("RGB"))
    x = to_tensor(image, m.cfg.image_size, m.meta["mean"], m.meta["std"], m.cfg.channels)
    recorder = AttentionRecorder(m.model)
    try:
        with torch.inference_mode(), recorder.record() as store:
            m.model(x)
    finally:
        recorder.eject()
    want = torch.stack(store)[:, 0].numpy()  # [layer, head, query, key]
    assert r.weights.shape == want.shape
    assert np.abs(r.weights - want).max() <= EXACT
    np.testing.assert_allclose(r.overview(4), block_max(want, 4), atol=EXACT)
    assert r.value_norms() is not None and r.value_norms().shape == want.shape[:3]


def test_seq2seq_encoder_decoder_and_cross_attention_equal_their_softmax():
    m = attnviz.load_model("date-seq2seq")
    text = "Saturday, the 21st of November 2026"
    r = m.run(text=text)
    src = m.src_vocab.encode_batch([m.check(text)[0]], m.max_chars)
    with torch.inference_mode():
        ids = m.net.greedy(src)[0].tolist()
        ids = ids[: ids.index(Vocab.EOS) + 1] if Vocab.EOS in ids else ids
        dec_in = torch.tensor([ids[:-1] if ids[-1] == Vocab.EOS else ids])
        with m._recorder.record() as store:  # the softmax modules' own weights
            m.net(src, dec_in)
    n_enc = m.net.cfg.n_enc_layers
    want = {"encoder": torch.stack(store[:n_enc])[:, 0].numpy(),
            "decoder": torch.stack(store[n_enc::2])[:, 0].numpy(),
            "cross": torch.stack(store[n_enc + 1::2])[:, 0].numpy()}
    for name, got in (("encoder", r), ("decoder", r.parts["decoder"]), ("cross", r.parts["cross"])):
        assert got.weights.shape == want[name].shape, name
        assert np.abs(got.weights - want[name]).max() <= EXACT, name
        np.testing.assert_allclose(got.overview(3), block_max(want[name], 3), atol=EXACT, err_msg=name)
    assert np.all(np.triu(r.parts["decoder"].weights, k=1) == 0)  # causal: exactly 0, as the masked softmax
