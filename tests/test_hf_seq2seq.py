"""attnviz.models.hf_seq2seq with local encoder-decoder directories (tiny random weights, tests/hf_dirs.py): which
kinds of attention each family recomputes from a capture (the load-time probe decides), and that every head, a row
and the overview of each kind equal transformers' eager weights. (The full weights of all three kinds against
eager, for a short and a cut input, are in tests/test_hf_text.py.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.models.heads import CapturedHeads
from attnviz.models.hf_seq2seq import KINDS
from attnviz.result import StoredWeights, block_max
from tests.hf_dirs import SHORT, TEXT
from tests.test_hf_text import reference_encoding, reference_model, stacked

CAPTURED = {"bart": {"encoder", "decoder", "cross"}, "marian": {"encoder", "decoder", "cross"}, "t5": {"cross"}}
"""What each family captures: T5 adds a relative position bias to its self-attention scores (an argument of its
attention the capture does not keep: the probe's outputs differ), not to its cross-attention."""


@pytest.mark.parametrize("model_type", sorted(CAPTURED))
def test_each_kind_is_captured_where_the_probe_reproduces_it_and_reads_eager_heads(text_dir, model_type):
    directory = text_dir(model_type)
    m = attnviz.load_model(directory)
    assert {kind for kind, yes in m.captures.items() if yes} == CAPTURED[model_type]
    r = m.run(text=SHORT)
    results = {"encoder": r, "decoder": r.parts["decoder"], "cross": r.parts["cross"]}
    ref = reference_model(TEXT[model_type], directory)
    enc = reference_encoding(directory, ref, SHORT, r.n_tokens)
    with torch.inference_mode():
        out = ref(**enc, decoder_input_ids=torch.tensor([_decoder_input(m, r)]), output_attentions=True)
    eager = {"encoder": out.encoder_attentions, "decoder": out.decoder_attentions, "cross": out.cross_attentions}
    for kind in KINDS:
        got, want = results[kind], stacked(eager[kind])
        captured = kind in CAPTURED[model_type]
        assert isinstance(got.source, CapturedHeads if captured else StoredWeights), kind
        for layer in range(got.n_layers):
            for head in range(got.n_heads):
                np.testing.assert_allclose(got.head(layer, head), want[layer, head], rtol=0, atol=1e-6)
        query = got.n_tokens // 2
        np.testing.assert_allclose(got.row(1, 2, query), want[1, 2, query], rtol=0, atol=1e-6)
        np.testing.assert_allclose(got.overview(8), block_max(want, 8), rtol=0, atol=1e-6)
    assert np.all(np.triu(results["decoder"].weights, k=1) == 0)


def _decoder_input(m, r) -> list[int]:
    """The decoder's input of run ``r``: the greedy output (start token first), as long as the run's decoder
    keys."""
    ids = m.model.generate(**m.encode(SHORT)[0], do_sample=False, num_beams=1, max_new_tokens=m.max_new_tokens,
                           min_new_tokens=1)[0].tolist()
    return ids[:len(r.parts["decoder"].keys)]


def test_a_captured_encoder_decoder_exports_every_kind(text_dir, tmp_path):
    """export_result of a BART run (all three kinds captured; cross-attention not square): each kind's weights.npy
    is its heads, its CSV a head's rows over its keys."""
    from attnviz.export import export_result

    r = attnviz.load_model(text_dir("bart")).run(text=SHORT)
    written = export_result(r, tmp_path, csv_heads=((1, 3),))
    for folder, got in ((tmp_path, r), (tmp_path / "decoder", r.parts["decoder"]),
                        (tmp_path / "cross", r.parts["cross"])):
        assert isinstance(got.source, CapturedHeads)
        np.testing.assert_array_equal(np.load(folder / "weights.npy"), got.weights)
        assert (folder / "grid.png") in written and (folder / "layer1_head3.png") in written
    rows = (tmp_path / "layer1_head3.csv").read_text().splitlines()
    assert len(rows) == 1 + r.n_tokens
