"""The Image page through Streamlit's AppTest (real app, real models): examples, uploads, controls, bad files,
links, ALTI, relevance and faithfulness on a classifier, a broken model, and no result kept by the session."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import attnviz
from attnviz.analysis.patches import patch_index
from attnviz.models.faithful import LABELS, faithfulness
from attnviz.web import flow, runs
from attnviz.web.faithfulness import PAGE_STEPS
from attnviz.web.image import VIEWS as IMAGE_VIEWS
from attnviz.web.image.picture import examples, read_image
from attnviz.web.runs import ImageRun
from tests.apptest import load_error, page, results_left
from tests.image_files import animated_gif, bad_files, encode, halves
from tests.shown import plain

TIMEOUT = 240


ROOT = Path(__file__).resolve().parents[1]


EXPORTS = {"All heads (PNG)", "Focused overlay (PNG)", "Raw heatmap (PNG)", "Rollout overlay (PNG)", "Weights (NPY)",
           "Tokens (JSON)"}


def image_page() -> AppTest:
    return AppTest.from_file(str(ROOT / "pages/2_Image.py"), default_timeout=TIMEOUT)


def image_captions(at: AppTest) -> str:
    """Captions of every ``st.image`` on the page, joined."""
    return " | ".join(c for el in at.get("image") for c in el.captions)


def test_example_runs_with_grid_and_exports():
    at = image_page().run()
    assert not at.exception and not at.error
    assert "all 72 heads" in image_captions(at)  # the all-heads grid: one image
    labels = {b.proto.label for b in at.get("download_button")}
    assert EXPORTS <= labels
    assert any("dinov2-small" in c.value and "16×16" in c.value for c in at.caption)
    # Across layers: raw and rollout at once; DINOv2's flow costs seconds per token, so it waits for a click.
    assert "Raw · layer 11, mean of heads" in image_captions(at) and "Rollout (mean" in image_captions(at)
    assert [b.label for b in at.button if b.label.startswith("Compute flow for this token")]
    assert "Flow (" not in image_captions(at)


def test_tiny_model_shows_prediction_and_patch_query():
    at = image_page().run()
    at.selectbox(key="image_model").set_value("shapes-vit")
    at.selectbox(key="image_example").set_value("shapes triangle")
    at.run()
    assert not at.exception and not at.error
    assert any("Prediction: triangle" in m.value for m in at.markdown)
    at.radio(key="image_query_kind").set_value("A patch").run()
    at.number_input(key="image_row").set_value(5)
    at.number_input(key="image_col").set_value(3)
    at.selectbox(key="image_layer").set_value(1)
    at.radio(key="image_fusion").set_value("max")
    at.slider(key="image_discard").set_value(0.5)
    at.run()
    assert not at.exception and not at.error
    assert any("patch (5, 3)" in h.value for h in at.subheader)
    assert "all 16 heads" in image_captions(at)


def test_switching_to_a_smaller_model_keeps_choices_in_range():
    at = image_page().run()
    at.radio(key="image_query_kind").set_value("A patch").run()
    at.number_input(key="image_row").set_value(15)
    at.selectbox(key="image_layer").set_value(11)
    at.run()
    at.selectbox(key="image_model").set_value("vit-fashion")
    at.selectbox(key="image_example").set_value("fashion ankle boot")
    at.run()
    assert not at.exception and not at.error
    assert at.number_input(key="image_row").value == 6 and at.selectbox(key="image_layer").value == 3
    assert any("Prediction: Ankle boot" in m.value for m in at.markdown)


def test_good_upload_replaces_the_example():
    at = image_page().run()
    at.file_uploader(key="image_upload").set_value(("halves.webp", encode(halves((300, 200)), "WEBP"), "image/webp"))
    at.run()
    assert not at.exception and not at.error
    assert any("halves.webp" in plain(c.value) for c in at.caption)


def test_animated_gif_upload_says_first_frame():
    at = image_page().run()
    at.file_uploader(key="image_upload").set_value(("anim.gif", animated_gif(), "image/gif"))
    at.run()
    assert not at.exception and not at.error
    assert any("first" in i.value for i in at.info)


@pytest.mark.parametrize("case", ["text named .png", "truncated jpeg", "1x1", "decompression bomb 64 MP"])
def test_bad_upload_shows_an_error_not_a_traceback(case):
    data, name, word = bad_files()[case]
    at = image_page().run()
    at.file_uploader(key="image_upload").set_value((name, data, "image/png"))
    at.run()
    assert not at.exception
    assert at.error and word in at.error[0].value


def test_across_layers_shows_raw_rollout_and_flow_of_the_chosen_patch():
    at = image_page().run()
    at.selectbox(key="image_model").set_value("shapes-vit")
    at.selectbox(key="image_example").set_value("shapes triangle")
    at.run()
    at.radio(key="image_query_kind").set_value("A patch").run()
    at.number_input(key="image_row").set_value(5)
    at.number_input(key="image_col").set_value(3)
    at.selectbox(key="image_layer").set_value(2)
    at.run()
    assert not at.exception and not at.error
    assert any("Across layers: attention of patch (5, 3)" in h.value for h in at.subheader)
    captions = image_captions(at)
    assert "Raw · layer 2, mean of heads" in captions and "Rollout (mean" in captions and "Flow (mean" in captions
    assert {"Flow overlay (PNG)", "Raw, rollout, flow (CSV)"} <= {b.proto.label for b in at.get("download_button")}
    run = ImageRun.of("shapes-vit", examples()["shapes triangle"].read_bytes())
    weights = run.result().weights
    query = patch_index(5, 3, (8, 8))
    shown = flow.ROWS.get((run.key, query))
    assert shown is not None  # the page kept the row it showed
    np.testing.assert_allclose(shown, attnviz.attention_flow(weights)[query], atol=1e-6)  # the chosen patch's row


def test_link_reopens_model_example_layer_and_head():
    at = image_page()
    for k, v in {"image_model": "vit-fashion", "image_example": "shapes triangle", "image_layer": "L2",
                 "image_head": "H1"}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="image_model").value == "vit-fashion"
    assert at.selectbox(key="image_example").value == "shapes triangle"  # the link's, not the model's own example
    assert (at.selectbox(key="image_layer").value, at.selectbox(key="image_head").value) == (2, 1)
    assert any("Focused head: L2 H1" in h.value for h in at.subheader)
    at.selectbox(key="image_head").set_value(3)
    at.run()
    assert at.query_params["image_head"] == "H3"  # the address bar follows the page


def test_link_with_a_layer_the_model_lacks_falls_back():
    at = image_page()
    at.query_params["image_model"] = "vit-fashion"
    at.query_params["image_layer"] = "L11"  # vit-fashion has 4 layers
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="image_layer").value == 3


@pytest.mark.parametrize("size", [(2000, 40), (16, 10000)])
def test_a_very_long_picture_is_shown_stretched_and_its_patches_can_be_chosen(size):
    """At 50:1 a patch row of the 640 px display would be under a pixel high (the patch outline crashed); the
    picture is shown stretched to 4:1, with a notice, and a patch query works."""
    at = image_page().run()
    at.file_uploader(key="image_upload").set_value(("long.png", encode(halves(size), "PNG"), "image/png"))
    at.run()
    at.radio(key="image_query_kind").set_value("A patch").run()
    at.number_input(key="image_row").set_value(15)
    at.number_input(key="image_col").set_value(15)
    at.run()
    assert not at.exception and not at.error
    assert any("stretched to 4:1" in i.value for i in at.info)
    assert any("patch (15, 15)" in h.value for h in at.subheader)
    data = encode(halves(size), "PNG")
    shown = read_image(ImageRun.of("dinov2-small", data).data_digest, data)[0]
    assert sorted(shown.size) == [160, 640]


def test_image_page_shows_a_broken_model_and_others_work(broken):
    at = page("2_Image.py").run()
    at.selectbox(key="image_model").set_value("broken-image").run()
    assert "incomplete metadata" in load_error(at, "broken-image")
    at.selectbox(key="image_model").set_value("dinov2-small").run()
    assert not at.exception and not at.error
    assert any("dinov2-small" in c.value and "16×16" in c.value for c in at.caption)


def test_image_page_keeps_no_result():
    assert IMAGE_VIEWS  # every section runs on the page, each with its downloads
    at = AppTest.from_file(str(ROOT / "pages/2_Image.py"), default_timeout=TIMEOUT).run()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    at.file_uploader(key="image_upload").set_value(("red.png", buf.getvalue(), "image/png"))
    at.run()
    assert results_left(at) == 0


def test_classifier_relevance_alti_and_faithfulness():
    at = image_page()
    at.query_params["image_model"] = "shapes-vit"
    at.query_params["image_example"] = "shapes triangle"
    at.run()
    assert not at.exception and not at.error
    captions = image_captions(at)
    assert "ALTI roll-up of [CLS]" in captions and "Relevance for triangle: the model gives it" in captions
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"ALTI overlay (PNG)", "Relevance overlay (PNG)", "Relevance (CSV)"} <= labels
    at.selectbox(key="image_target").set_value(0).run()  # another class than the prediction
    m = attnviz.load_model("shapes-vit")
    other = m.relevance(image=examples()["shapes triangle"], target=0)
    assert f"Relevance for {other.label}: the model gives it {other.probability:.1%}" in image_captions(at)
    assert not at.success  # faithfulness waits for a click
    next(b for b in at.button if b.label.startswith("Measure faithfulness")).click()
    at.run()
    assert not at.exception and not at.error
    f = faithfulness(m, image=examples()["shapes triangle"], max_steps=PAGE_STEPS)  # the prediction, as on the page
    assert f"by deletion **{LABELS[f.best['deletion']]}**" in at.success[0].value
    assert f"by insertion **{LABELS[f.best['insertion']]}**" in at.success[0].value
    assert {"Faithfulness curves (PNG)", "Faithfulness curves (CSV)"} <= {b.proto.label for b in
                                                                          at.get("download_button")}
    assert results_left(at) == 0


# ------------------------------------------------------------------------------------- the local models folder


def test_a_local_vision_folder_runs_with_its_prefix_tokens(local_models):
    """A DeiT folder of $ATTNVIZ_MODELS_DIR is in the image picker (text folders are not); its [CLS] and [DIST]
    come before the patches, so a chosen patch is the position after both."""
    at = image_page().run()
    options = at.selectbox(key="image_model").options
    assert "my-deit" in options and not {"my-bert", "my-t5", "linked-out"} & set(options)
    at.selectbox(key="image_model").set_value("my-deit").run()
    assert not at.exception and not at.error
    caption = " ".join(c.value for c in at.caption)
    assert "**my-deit**: 2 layers × 4 heads, 6×5 patches + [CLS], [DIST] = 32 tokens" in caption
    assert "resized to 40×48 px" in caption
    at.radio(key="image_query_kind").set_value("A patch").run()
    at.number_input(key="image_row").set_value(4)
    at.number_input(key="image_col").set_value(3)
    at.run()
    assert not at.exception and not at.error
    result = ImageRun.of("my-deit", examples()[at.selectbox(key="image_example").value].read_bytes()).result()
    layer, head = at.selectbox(key="image_layer").value, at.selectbox(key="image_head").value
    query = patch_index(4, 3, result.grid, prefix=2)
    assert result.tokens[query] == "p4,3"
    focused = result.weights[layer, head, query, 2:]
    assert f"attention of patch (4, 3) (max {focused.max():.3f}" in image_captions(at)


def test_dinov2_resolution_runs_at_448_px_with_finer_maps():
    """The resolution slider (DINOv2 only) reads the picture at 448 px: 32×32 patches, the maps at that grid, the
    file names say the size; a tiny model offers no slider."""
    at = image_page().run()
    assert not at.exception and not at.error
    at.select_slider(key="image_size_dinov2-small").set_value(448).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("32×32 patches + [CLS] = 1,025 tokens" in c.value and "448×448 px" in c.value for c in at.caption)
    assert "all 72 heads" in image_captions(at)
    data = examples()["cat"].read_bytes()
    r = ImageRun.of("dinov2-small", data, 448).result()
    assert r.grid == (32, 32) and r.extras.input_size == 448
    at.selectbox(key="image_model").set_value("shapes-vit").run()
    assert not at.exception and not at.get("select_slider")


# ------------------------------------------------------------------------------------- weights or contributions


def test_the_contributions_switch_redraws_the_maps_and_the_focused_head_then_back():
    """shapes-vit reports value norms: the switch redraws the all-heads grid and the per-layer maps, and the
    focused head's numbers are that head's contributions (its row of contribution(layer, head) over the patches);
    off again, the weights come back."""
    at = image_page()
    at.query_params["image_model"] = "shapes-vit"
    at.query_params["image_example"] = "shapes triangle"
    at.run()
    assert not at.exception and not at.error
    switch = at.toggle(key="image_contributions")
    assert not switch.value and not switch.disabled
    layer, head = at.selectbox(key="image_layer").value, at.selectbox(key="image_head").value
    r = ImageRun.of("shapes-vit", examples()["shapes triangle"].read_bytes()).result()

    def urls() -> list[str]:
        return [el.proto.imgs[0].url for el in at.get("image")]

    def focused(values: np.ndarray) -> str:  # the focused head's caption for the [CLS] row ``values``
        patches = values[1:]
        return f"of [CLS] (max {patches.max():.3f}, {patches.sum() / values.sum():.0%} of it on patches)"

    weights = urls()
    assert focused(r.head(layer, head)[0]) in image_captions(at)
    at.toggle(key="image_contributions").set_value(True).run()
    assert not at.exception and not at.error
    contributions = r.contribution(layer, head)[0]
    assert not np.allclose(contributions / contributions.sum(), r.head(layer, head)[0])
    assert f"L{layer} H{head}: contributions {focused(contributions)}" in image_captions(at)
    assert "all 16 heads, contributions of [CLS]" in image_captions(at)
    changed = [a != b for a, b in zip(weights, urls(), strict=True)]
    assert changed[0] and sum(changed) >= 4  # the grid, the focused overlay and heatmap, the per-layer maps
    at.toggle(key="image_contributions").set_value(False).run()
    assert not at.exception and not at.error
    assert urls() == weights and focused(r.head(layer, head)[0]) in image_captions(at)


def test_a_square_local_vision_folder_offers_its_resolutions(vision_dir, tmp_path, monkeypatch):
    """A local ViT folder whose processor reads square pictures gets the resolution slider, from its own size up:
    at 64 px the picture is read as 8×8 patches."""
    import json
    import shutil

    from attnviz.models import local, registry

    folder = tmp_path / "models" / "square-vit"
    shutil.copytree(vision_dir("vit"), folder)
    config = json.loads((folder / "preprocessor_config.json").read_text())
    config["size"] = {"height": 48, "width": 48}
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    monkeypatch.setenv(local.ENV, str(folder.parent))
    try:
        at = image_page().run()
        at.selectbox(key="image_model").set_value("square-vit").run()
        assert not at.exception and not at.error
        slider = at.select_slider(key="image_size_square-vit")
        assert slider.options[0] == "48" and slider.options[-1] == str(37 * 8)
        slider.set_value(64).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        caption = " ".join(c.value for c in at.caption)
        assert "8×8 patches + [CLS] = 65 tokens" in caption and "64×64 px" in caption
    finally:
        monkeypatch.delenv(local.ENV)
        registry._sync_local()


def test_a_local_vision_folder_reports_value_norms(local_models):
    """my-deit's attention is captured with its output projections' value norms: the switch is on offer."""
    at = image_page().run()
    at.selectbox(key="image_model").set_value("my-deit").run()
    assert not at.exception and not at.error
    result = ImageRun.of("my-deit", examples()[at.selectbox(key="image_example").value].read_bytes()).result()
    assert result.value_norms() is not None and result.value_norms().shape == (2, 4, result.n_tokens)
    assert not at.toggle(key="image_contributions").disabled


def test_a_vision_model_without_value_norms_shows_the_switch_disabled(local_models, monkeypatch):
    """A folder whose attention's output projections are not found (made so here: every family attnviz loads has
    them) reports no value norms: the switch is off and disabled, with the reason."""
    from attnviz.models import capture

    monkeypatch.setattr(capture, "_find_projections", lambda *args: False)
    runs.RESULTS.clear()  # a run of my-deit another test left
    at = image_page().run()
    at.selectbox(key="image_model").set_value("my-deit").run()
    assert not at.exception and not at.error
    result = ImageRun.of("my-deit", examples()[at.selectbox(key="image_example").value].read_bytes()).result()
    assert result.value_norms() is None
    switch = at.toggle(key="image_contributions")
    assert switch.disabled and not switch.value
    assert any("Contributions are not available for **my-deit**" in plain(c.value) for c in at.caption)
