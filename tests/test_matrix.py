"""attnviz.render.matrix: the mechanisms lab's SVG heatmaps."""
from __future__ import annotations

import numpy as np
import pytest


def test_value_heatmap_svg_writes_every_number_and_greys_masked_cells():
    """The mechanisms lab's heatmap: valid SVG, one cell per value with its label, -inf grey, labels escaped,
    a diverging scale centred at 0 for values of both signs, and huge values without overflow."""
    import xml.etree.ElementTree as ET

    from attnviz.mechanisms import format_number
    from attnviz.render.colors import MASKED_COLOR, lut
    from attnviz.render.matrix import value_heatmap

    svg = value_heatmap(np.array([[32.0, -np.inf, 2e-9]]), ["<q0>"], ["k0", "k1", "k2"], title="Q' <b>[1, 3]</b>",
                        number=format_number)
    root = ET.fromstring(svg)  # well-formed, so "<q0>" and the title were escaped
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert texts[0] == "Q' <b>[1, 3]</b>"  # the title first, above everything
    assert "<q0>" in texts and {"32", "-inf", "2.000e-09"} <= set(texts)
    fills = [r.get("fill") for r in root.iter(f"{ns}rect")]
    assert MASKED_COLOR in fills

    assert ">2e-09<" in value_heatmap(np.array([[2e-9]]), ["q0"], ["k0"])  # render's own short form by default
    signed = value_heatmap(np.array([[-2.0, 0.0, 1.0]]), ["q0"], ["a", "b", "c"])
    assert "-2" in signed and ">2<" in signed  # the colour bar runs from -2 to 2: centred at 0
    white = "#{:02x}{:02x}{:02x}".format(*lut("RdBu_r")[128])
    assert white in signed  # 0 is the middle colour
    assert "<svg" in value_heatmap(np.array([[1e308, -1e308]]), ["q0"], ["a", "b"])
    with pytest.raises(ValueError):
        value_heatmap(np.zeros((2, 2)), ["q0"], ["a", "b"])
