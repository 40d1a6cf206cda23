"""Which explanation holds up, on one input: every method's scores of the input's units, and their deletion and
insertion curves for one target.

Units: the patches of an image classifier (vit-fashion, shapes-vit), scored on the [CLS] row; the prompt tokens
before the last one of a causal LM (SmolLM2), scored on the last token's row (the position that predicts). Methods:

* ``attention``: the last layer's attention, mean over heads;
* ``rollout``: attention rollout (Abnar & Zuidema 2020), :func:`attnviz.rollout`;
* ``flow``: attention flow of that one row (same paper), when its estimated time allows (:data:`FLOW_MAX_SECONDS`);
* ``alti``: the ALTI roll-up (Ferrando et al. 2022), :mod:`attnviz.models.alti`, for the families it supports;
* ``relevance``: gradient-weighted relevance for the target (Chefer et al. 2021), :mod:`attnviz.models.relevance`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnviz.analysis import faithfulness as fa
from attnviz.analysis.flow import estimate_seconds, flow_row
from attnviz.analysis.rollout import rollout
from attnviz.images import as_rgb
from attnviz.models.alti import alti
from attnviz.models.base import AttentionModel
from attnviz.models.perturb import Progress, image_probabilities, text_probabilities
from attnviz.models.relevance import text_relevance

METHODS = ("attention", "rollout", "flow", "alti", "relevance")
LABELS = {"attention": "last-layer attention", "rollout": "rollout", "flow": "flow", "alti": "ALTI roll-up",
          "relevance": "gradient relevance"}
FLOW_MAX_SECONDS = 5.0
"""Flow is left out when its one row is estimated to take longer (:func:`attnviz.analysis.flow.estimate_seconds`)."""
MAX_STEPS = 64
"""At most this many perturbation steps per curve (plus the unperturbed input): every unit up to 64 units."""


@dataclass
class Explanations:
    """Every method's scores of one input's units, for one target.

    Attributes:
        units: labels of the units (patch labels ``p{row},{col}``, or the prompt tokens before the last).
        scores: method -> ``[unit]`` float32.
        skipped: method -> why it was not computed.
        target: class index or token id; label: its name or text; probability: the model's probability of it.
        query: the position whose row the scores are (0 = [CLS], or the last token).
    """

    units: list[str]
    scores: dict[str, np.ndarray]
    skipped: dict[str, str]
    target: int
    label: str
    probability: float
    query: int


@dataclass
class Faithfulness:
    """Deletion and insertion curves of every method for one input and target."""

    explanations: Explanations
    curves: list[fa.Curve]
    best: dict[str, str | None] = field(default_factory=dict)  # mode -> method


def _kind(model: AttentionModel) -> str:
    if model.kind == "image" and hasattr(model, "relevance"):
        return "image"
    if model.kind == "text" and getattr(model, "causal", False):
        return "text"
    raise ValueError(f"{model.name!r} makes no prediction to explain: faithfulness is measured for the image "
                     "classifiers (vit-fashion, shapes-vit) and causal language models (smollm2-135m).")


def explanations(model: AttentionModel, *, image=None, text: str | None = None, ids: list[int] | None = None,
                 target: int | str | None = None, methods: tuple[str, ...] = METHODS) -> Explanations:
    """Scores of the input's units by each method, for ``target`` (``None``: the prediction).

    Raises:
        ValueError: a model without a prediction, an unknown method, a prompt of one token, bad input.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"Unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}.")
    kind = _kind(model)
    if kind == "image":
        if image is None:
            raise ValueError("No image given: upload a picture or choose an example.")
        image = as_rgb(image)
        rel = model.relevance(image=image, target=target)
        r, query, inputs = model.run(image=image), 0, {"image": image}
        units = slice(1, None)
    else:
        if ids is None:
            enc, _, _ = model.encode(text)
            ids = enc["input_ids"][0].tolist()
        if len(ids) < 2:
            raise ValueError("Faithfulness needs a prompt of at least two tokens: the last one predicts, the ones "
                             "before it are removed.")
        rel = text_relevance(model, ids=ids, target=target)
        r, query, inputs = model.run_ids(ids), len(ids) - 1, {"ids": ids}
        units = slice(0, query)
    weights = r.weights  # [layer, head, query, key]
    scores: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for m in methods:
        if m == "attention":
            scores[m] = weights[-1].mean(axis=0)[query, units]
        elif m == "rollout":
            scores[m] = rollout(weights)[query, units]
        elif m == "flow":
            seconds = estimate_seconds(r.n_layers, r.n_tokens, 1)
            if seconds > FLOW_MAX_SECONDS:
                skipped[m] = f"flow of one row would take about {seconds:.0f} s (limit {FLOW_MAX_SECONDS:.0f} s)"
                continue
            scores[m] = flow_row(weights, query)[units]
        elif m == "alti":
            try:
                scores[m] = alti(model, **inputs).rollup[query, units]
            except ValueError as e:  # another architecture, or too long for the time it would take
                skipped[m] = str(e).rstrip(".")
        else:
            scores[m] = (rel.scores.ravel() if kind == "image" else rel.scores[units])
    scores = {k: np.asarray(v, np.float32) for k, v in scores.items()}
    return Explanations(r.tokens[units], scores, skipped, rel.target, rel.label, rel.probability, query)


def faithfulness(model: AttentionModel, *, image=None, text: str | None = None, ids: list[int] | None = None,
                 target: int | str | None = None, methods: tuple[str, ...] = METHODS,
                 modes: tuple[str, ...] = fa.MODES, max_steps: int = MAX_STEPS,
                 progress: Progress | None = None) -> Faithfulness:
    """Deletion and insertion curves of each method for one input and target (``None``: the prediction).

    Removal: patches set to the normalisation mean, prompt tokens dropped (:mod:`attnviz.models.perturb`).
    ``progress(done, total)`` is called after each batch of perturbed inputs.

    Returns:
        :class:`Faithfulness`; ``best[mode]`` names the most faithful method (lowest deletion area, highest
        insertion area).
    """
    ex = explanations(model, image=image, text=text, ids=ids, target=target, methods=methods)
    n = len(ex.units)
    counts = fa.step_counts(n, max_steps)
    if _kind(model) == "image":
        pixels = model.inputs(image)[0]

        def probabilities(present: np.ndarray) -> np.ndarray:
            return image_probabilities(model, pixels, present, ex.target, progress)
    else:
        seq = ids if ids is not None else model.encode(text)[0]["input_ids"][0].tolist()

        def probabilities(present: np.ndarray) -> np.ndarray:
            return text_probabilities(model, seq, present, ex.target, progress)
    jobs = [(m, mode, fa.present_masks(fa.ranking(s), counts, mode)) for m, s in ex.scores.items() for mode in modes]
    if not jobs:
        return Faithfulness(ex, [], {mode: None for mode in modes})
    # all curves in one batch, each distinct input once (every curve shares the whole and the empty input)
    distinct, where = np.unique(np.concatenate([masks for _, _, masks in jobs]), axis=0, return_inverse=True)
    probs = probabilities(distinct)[where.reshape(-1)]
    curves, at = [], 0
    for m, mode, masks in jobs:
        curves.append(fa.curve(m, mode, counts, n, probs[at:at + len(masks)]))
        at += len(masks)
    return Faithfulness(ex, curves, {mode: fa.best_method(curves, mode) for mode in modes})
