"""Where a head's weights and its contributions disagree (Kobayashi et al. 2020, "Attention is Not Only a Weight"):
for one input, every head's row of one query, the weights ``α_ij`` and the contributions ``α_ij · ‖f_h(x_j)‖`` with
``f_h(x_j) = (x_j W_V^h + b_V^h) W_O^h`` computed here from the model's own value and output weights (the ALTI
adapters' :func:`attnviz.models.alti._per_head`), both normalised per row. Prints the heads whose top key differs,
the largest share moved first. The example in ``docs/explanations.md`` comes from here. Asserts nothing.

Usage::

    .venv/bin/python bench/weights_vs_contributions.py
    .venv/bin/python bench/weights_vs_contributions.py --text "..." --query it --top 5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.models.alti import HF_FAMILIES, family  # noqa: E402

TEXT = "The animal didn't cross the street because it was too tired."


@torch.inference_mode()
def value_norms(model, text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokens, weights ``[layer, head, query, key]`` and ``‖f_h(x_j)‖`` ``[layer, head, key]`` of a text model."""
    fam = family(model)
    enc = dict(model.encode(text)[0])
    out = model.model(**enc, output_hidden_states=True, output_attentions=True)
    norms, weights = [], []
    for parts in HF_FAMILIES[fam](model.model, out.hidden_states, out.attentions):
        norms.append(np.linalg.norm(parts.values, axis=-1))  # [head, key]
        weights.append(parts.weights)
    return model.run(text=text).tokens, np.stack(weights), np.stack(norms)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--text", default=TEXT)
    p.add_argument("--query", default=" it", help="the query token's label (the first such token)")
    p.add_argument("--top", type=int, default=5)
    args = p.parse_args(argv)
    m = attnviz.load_model(args.model)
    tokens, w, norms = value_norms(m, args.text)
    labels = [t.strip() for t in tokens]
    q = labels.index(args.query.strip())
    c = w[:, :, q, :] * norms  # [layer, head, key]
    c = c / c.sum(-1, keepdims=True)
    a = w[:, :, q, :]
    found = []
    for layer in range(w.shape[0]):
        for h in range(w.shape[1]):
            ka, kc = int(a[layer, h].argmax()), int(c[layer, h].argmax())
            if ka != kc:
                found.append((a[layer, h, ka] - c[layer, h, ka], layer, h, ka, kc))
    print(f"{args.model}: {args.text!r}, query {tokens[q]!r} (position {q}); "
          f"{len(found)} of {w.shape[0] * w.shape[1]} heads have another top key by contribution")
    for _, layer, h, ka, kc in sorted(found, reverse=True)[:args.top]:
        print(f"layer {layer} head {h}: weight top {tokens[ka]!r} {a[layer, h, ka]:.2f} "
              f"(contribution {c[layer, h, ka]:.2f}, ‖f‖ {norms[layer, h, ka]:.2f}); contribution top {tokens[kc]!r} "
              f"{c[layer, h, kc]:.2f} (weight {a[layer, h, kc]:.2f}, ‖f‖ {norms[layer, h, kc]:.2f})")


if __name__ == "__main__":
    main()
