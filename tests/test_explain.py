"""attnviz.render.explain: the faithfulness curves as a Plotly figure and as a picture, several measures of one token
as one heatmap, and one query's attention row in every head."""
from __future__ import annotations

import json

import numpy as np
import pytest

from attnviz.analysis.faithfulness import curve
from attnviz.render.colors import lut
from attnviz.render.explain import METHOD_COLORS, curves_figure, curves_image, head_rows_image, measures_image

COUNTS = np.arange(5)


def curves():
    falling, rising = np.array([1.0, 0.5, 0.2, 0.1, 0.0]), np.array([0.0, 0.6, 0.9, 1.0, 1.0])
    return [curve("rollout", "deletion", COUNTS, 4, falling), curve("rollout", "insertion", COUNTS, 4, rising),
            curve("relevance", "deletion", COUNTS, 4, np.array([1.0, 0.2, 0.1, 0.0, 0.0])),
            curve("relevance", "insertion", COUNTS, 4, np.array([0.0, 0.9, 1.0, 1.0, 1.0]))]


def test_curves_figure_one_line_per_method_and_mode_with_its_area():
    fig = curves_figure(curves(), {"rollout": "Rollout <b>"}, "title")
    spec = json.loads(fig.to_json())
    names = [t["name"] for t in spec["data"]]
    # areas: trapezoids of width 0.25, x 100
    assert names == ["Rollout &lt;b&gt;: 32.5", "relevance: 20.0", "Rollout &lt;b&gt;: 75.0", "relevance: 85.0"]
    colours = [t["line"]["color"] for t in spec["data"]]
    assert colours[0] == colours[2] == METHOD_COLORS[0] and colours[1] == colours[3] == METHOD_COLORS[1]
    assert [a["text"] for a in spec["layout"]["annotations"]][0].startswith("Deletion")


def test_curves_image_draws_each_method_in_its_colour():
    img = np.asarray(curves_image(curves(), title="t"))
    for colour in METHOD_COLORS[:2]:
        rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        assert (img == rgb).all(axis=-1).sum() > 100  # lines and the legend's swatch
    only_deletion = curves_image([c for c in curves() if c.mode == "deletion"])
    assert only_deletion.width < img.shape[1]  # one panel


def test_measures_image_scales_each_row_and_leaves_out_what_was_not_computed():
    rows = {"a": np.array([0.0, 2.0, 1.0]), "b": None, "c": np.array([0.0, 0.0, 0.0])}
    img = measures_image(rows, ["x", "y", "z"], "t").convert("RGB")
    top = lut("Viridis")[-1]
    assert (np.asarray(img) == top).all(axis=-1).any()  # the maximum of row a in the top colour
    with pytest.raises(ValueError):
        measures_image({"b": None}, ["x"])


def test_head_rows_image_one_strip_per_head_coloured_to_its_maximum():
    rows = np.zeros((2, 3, 4), np.float32)
    rows[..., 0] = 1.0  # every head puts all its weight on key 0
    rows[1, 2] = [0.1, 0.2, 0.3, 0.4]
    img = np.asarray(head_rows_image(rows, list("abcd"), "t", row_px=3).convert("RGB"))
    top = lut("Viridis")[-1]
    assert (img == top).all(axis=-1).sum() >= 3 * 5 * 24  # five strips of 3 px at key 0, one at key 3
    assert head_rows_image(rows, list("abcd"), "a long title " * 5).width > img.shape[1]  # the title fits
