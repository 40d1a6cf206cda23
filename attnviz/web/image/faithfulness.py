"""Image view *Faithfulness*: for a classifier, deletion and insertion curves of a class's probability for every
explanation method, measured when the person asks (:mod:`attnviz.web.faithfulness`)."""
from __future__ import annotations

import streamlit as st

from attnviz.web.faithfulness import EXPLAINED, measure_view
from attnviz.web.image.context import ImageContext
from attnviz.web.widgets import Download

LABEL = "Faithfulness"


def show(ctx: ImageContext) -> list[Download]:
    """The explanation, the class (select box ``image_faith_target``), then the button or the measurement; offers
    its downloads for the page's *Export* strip."""
    result = ctx.result
    st.subheader("Faithfulness: which explanation holds up")
    st.caption(EXPLAINED.format(units="patches", unit="patch",
                                removal="A patch is removed by setting its pixels to the normalisation mean (grey)."))
    extras = result.extras
    if extras is None or extras.probabilities is None:
        st.info(f"{result.model} predicts no class: faithfulness is measured for the classifiers (vit-fashion, "
                "shapes-vit).", icon="ℹ️")
        return []
    classes = list(extras.probabilities)
    if st.session_state.get("image_faith_target", -1) >= len(classes):  # another model's class
        st.session_state["image_faith_target"] = -1
    choice = st.selectbox("Class whose probability is followed", range(-1, len(classes)),
                          key="image_faith_target", width=360,
                          format_func=lambda i: f"the prediction ({extras.prediction})" if i < 0
                          else f"{classes[i]} ({extras.probabilities[classes[i]]:.1%})")
    target = None if choice < 0 else int(choice)
    rows, cols = result.grid
    name = extras.prediction if target is None else classes[target]
    return measure_view(ctx.run, target, rows * cols, "patches", f"{result.model} · {name}",
                        f"{ctx.stem.rsplit('_', 1)[0]}_{'pred' if target is None else f'class{target}'}",
                        "image_faith_go")
