"""Formulas (LaTeX) and explanations written with the current numbers, for the mechanisms lab.

Everything here is text computed from traces; no Streamlit. Numbers go through :mod:`attnviz.mechanisms.fmt`,
so a tiny weight reads ``2.061e-09``, never ``0``.
"""
from __future__ import annotations

import math

import numpy as np

from attnviz.mechanisms.fmt import (
    format_exp,
    format_number,
    format_probabilities,
    format_vector,
    latex_number,
    latex_text,
)
from attnviz.mechanisms.rules import RULE_NAMES, AttentionTrace, attention

SCORE_FORMULAS = {
    "dot": r"s_{ij} = q_i \cdot k_j = \sum_{t=1}^{d_k} q_{it}\, k_{jt}",
    "scaled_dot": r"s_{ij} = q_i \cdot k_j = \sum_{t=1}^{d_k} q_{it}\, k_{jt}",
    "general": r"s_{ij} = q_i^\top W\, k_j",
    "additive": r"s_{ij} = v^\top \tanh\!\left(W_q\, q_i + W_k\, k_j\right)",
    "mlp": r"s_{ij} = w_2^\top\, \mathrm{ReLU}\!\left(W_1 \begin{bmatrix} q_i \\ k_j \end{bmatrix} + b_1\right) + b_2",
}
SCALE_FORMULA = r"s'_{ij} = \frac{s_{ij}}{\sqrt{d_k}}"
NO_SCALE_FORMULA = r"s'_{ij} = s_{ij}"
MASK_FORMULA = (r"\tilde s_{ij} = \begin{cases} s'_{ij} & \text{if query } i \text{ may attend key } j \\ "
                r"-\infty & \text{otherwise} \end{cases}")
SOFTMAX_FORMULA = (r"a_{ij} = \frac{\exp(\tilde s_{ij} - m_i)}{\sum_{j'} \exp(\tilde s_{ij'} - m_i)}, "
                   r"\qquad m_i = \max_{j'} \tilde s_{ij'}")
CONTEXT_FORMULA = r"c_i = \sum_j a_{ij}\, v_j"
MULTIHEAD_FORMULAS = {
    "project": r"Q' = Q W_q, \quad K' = K W_k, \quad V' = V W_v",
    "split": r"Q'_h = Q'[:, h\tfrac{d}{H} : (h+1)\tfrac{d}{H}] \quad (\text{same for } K', V')",
    "attend": r"\mathrm{head}_h = \mathrm{Attention}(Q'_h, K'_h, V'_h)",
    "concat": r"C = [\mathrm{head}_0, \dots, \mathrm{head}_{H-1}]",
    "output": r"\mathrm{MultiHead}(Q, K, V) = C\, W_o",
}


def _n(x: float) -> str:
    return latex_number(x)


def _factor(x: float, text: str | None = None) -> str:
    """A number (or its LaTeX ``text``) as a factor in a product: negatives and powers of ten in parentheses."""
    s = text or _n(x)
    return f"({s})" if x < 0 or "times" in s else s


def latex_vector(v: np.ndarray, limit: int = 8) -> str:
    """``[1, 2, 3]`` for LaTeX (long vectors elided in the middle)."""
    return _latex_items([_n(x) for x in np.ravel(np.asarray(v, dtype=np.float64))], limit)


def weight_texts(trace: AttentionTrace, i: int) -> list[str]:
    """LaTeX of query ``i``'s weights, exact even where a weight underflowed to 0 (from ``log_weights``)."""
    return [latex_text(t) for t in format_probabilities(trace.weights[i], trace.log_weights[i])[0]]


def _latex_items(items: list[str], limit: int = 8) -> str:
    if len(items) > limit:
        items = items[: limit // 2] + [r"\dots"] + items[-(limit // 2):]
    return r"\left[" + ", ".join(items) + r"\right]"


def worked_score(trace: AttentionTrace, i: int = 0, j: int = 0) -> list[str]:
    """LaTeX lines computing score ``s_ij`` (and the scaled score) with the actual numbers."""
    q, k, p = trace.Q[i], trace.K[j], trace.params
    s = trace.scores[i, j]
    sub = f"{i}{j}" if trace.n_query < 10 and trace.n_key < 10 else f"{i},{j}"
    lines = []
    if trace.rule in ("dot", "scaled_dot"):
        terms = [f"{_factor(a)} \\cdot {_factor(b)}" for a, b in zip(q, k, strict=True)]
        if len(terms) > 6:
            terms = terms[:3] + [r"\dots"] + terms[-2:]
        lines.append(f"s_{{{sub}}} = " + " + ".join(terms) + f" = {_n(s)}")
    elif trace.rule == "general":
        wk = p["W"] @ k
        lines.append(f"W k_{j} = {latex_vector(wk)}")
        lines.append(f"s_{{{sub}}} = q_{i} \\cdot (W k_{j}) = {latex_vector(q)} \\cdot {latex_vector(wk)} = {_n(s)}")
    elif trace.rule == "additive":
        pre = trace.steps["query_proj"][i] + trace.steps["key_proj"][j]
        lines.append(f"W_q q_{i} + W_k k_{j} = {latex_vector(pre)}")
        lines.append(f"\\tanh(\\cdot) = {latex_vector(trace.steps['hidden'][i, j])}")
        lines.append(f"s_{{{sub}}} = v \\cdot \\tanh(\\cdot) = {latex_vector(p['v'])} \\cdot "
                     f"{latex_vector(trace.steps['hidden'][i, j])} = {_n(s)}")
    elif trace.rule == "mlp":
        lines.append(f"[q_{i}; k_{j}] = {latex_vector(trace.steps['pairs'][i, j])}")
        lines.append(f"h = \\mathrm{{ReLU}}(W_1 [q_{i}; k_{j}] + b_1) = {latex_vector(trace.steps['hidden'][i, j])}")
        lines.append(f"s_{{{sub}}} = w_2 \\cdot h + b_2 = {_n(s)}")
    return lines


def worked_scale(trace: AttentionTrace, i: int = 0, j: int = 0) -> str:
    """LaTeX of the scaled score ``s'_ij`` with the numbers (``s'_ij = s_ij`` for rules without scaling)."""
    sub = f"{i}{j}" if trace.n_query < 10 and trace.n_key < 10 else f"{i},{j}"
    s = trace.scores[i, j]
    if trace.rule != "scaled_dot":
        return f"s'_{{{sub}}} = s_{{{sub}}} = {_n(s)}"
    d = trace.K.shape[1]
    return (f"s'_{{{sub}}} = \\frac{{{_n(s)}}}{{\\sqrt{{{d}}}}} = \\frac{{{_n(s)}}}{{{_n(math.sqrt(d))}}}"
            f" = {_n(trace.scaled_scores[i, j])}")


def worked_softmax(trace: AttentionTrace, i: int = 0) -> list[str]:
    """LaTeX lines of the stable softmax of query ``i``: the max, the shifted exponents over their sum (with its
    value), the weights. Long rows are elided alike on both sides, so exponents and weights line up."""
    row = trace.masked_scores[i]
    m = float(np.max(row))
    exps = [r"e^{-\infty}" if np.isneginf(x) else f"e^{{{_n(x - m)}}}" for x in row]
    total = math.fsum(float(np.exp(x - m)) for x in row)  # >= 1: the maximum contributes e^0
    return [
        f"m_{i} = \\max_j \\tilde s_{{{i}j}} = {_n(m)}",
        f"\\sum_j e^{{\\tilde s_{{{i}j}} - m_{i}}} = {_n(total)}",
        f"a_{i} = \\frac{{{_latex_items(exps)}}}{{{_n(total)}}} = {_latex_items(weight_texts(trace, i))}",
    ]


def worked_context(trace: AttentionTrace, i: int = 0) -> str:
    """LaTeX of ``c_i = sum_j a_ij v_j`` with the numbers (long sums elided)."""
    terms = [f"{_factor(a, t)}\\, {latex_vector(v, 4)}"
             for a, t, v in zip(trace.weights[i], weight_texts(trace, i), trace.V, strict=True)]
    if len(terms) > 4:
        terms = terms[:2] + [r"\dots"] + terms[-1:]
    return f"c_{i} = " + " + ".join(terms) + f" = {latex_vector(trace.context[i])}"


def top_two_gap(row: np.ndarray) -> float:
    """Gap between the two largest finite scores: their weights differ by the factor ``exp(gap)``."""
    finite = np.sort(row[np.isfinite(row)])
    return float(finite[-1] - finite[-2]) if finite.size >= 2 else 0.0


def scaling_note(Q: np.ndarray, K: np.ndarray, mask: np.ndarray | None = None, i: int = 0) -> str:
    """Why scaling by √d_k keeps the softmax from saturating, with the weights of query ``i`` both ways.

    ``Q [query, d_k]``, ``K [key, d_k]``; returns Markdown.
    """
    V = np.zeros((np.shape(K)[0], 1))
    try:
        raw = attention(Q, K, V, "dot", mask)
        scaled = attention(Q, K, V, "scaled_dot", mask)
    except ValueError as e:
        return f"**Why divide by √d_k?** The dot products of these inputs cannot be compared: {e}"
    d = raw.K.shape[1]
    allowed = int(np.isfinite(raw.masked_scores[i]).sum())
    if allowed < 2:
        return (f"**Why divide by √d_k?** Under this mask query {i} may attend only one key, so that key gets "
                "weight 1 with or without scaling. Pick another query (or mask) to compare the two.")
    g_raw, g_s = top_two_gap(raw.masked_scores[i]), top_two_gap(scaled.masked_scores[i])
    w_raw, w_s = raw.weights[i], scaled.weights[i]
    t_raw, t_s = (format_probabilities(t.weights[i], t.log_weights[i])[0] for t in (raw, scaled))
    text = (f"**Why divide by √d_k?** A dot product adds up d_k = {d} products, so its spread grows with the width. "
            f"For query {i} the dot scores are {format_vector(raw.masked_scores[i])}; divided by √{d} = "
            f"{format_number(math.sqrt(d))} they become {format_vector(scaled.masked_scores[i])}. "
            f"The softmax depends only on differences: the two best keys' weights differ by a factor e^gap, "
            f"e^{format_number(g_raw)} = {format_exp(g_raw)} without scaling and e^{format_number(g_s)} = "
            f"{format_exp(g_s)} with it. Weights without scaling: [{', '.join(t_raw)}]; "
            f"with scaling: [{', '.join(t_s)}]. ")
    top_raw, top_s = int(np.argmax(w_raw)), int(np.argmax(w_s))
    if w_raw[top_raw] > 0.99:
        text += (f"Unscaled, one key takes {t_raw[top_raw]} of the weight: the softmax is saturated, its "
                 f"gradient is almost 0 and the other keys barely learn.")
    else:
        text += f"The largest weight is {t_raw[top_raw]} unscaled and {t_s[top_s]} scaled."
    return text


def rule_note(trace: AttentionTrace, i: int = 0) -> str:
    """What the current rule does differently from the plain dot product, with its numbers (Markdown)."""
    s, w = trace.scores[i], trace.weights[i]
    j = int(np.argmax(w))
    masked = "the mask and " if trace.mask is not None and not trace.mask[i].all() else ""
    head = (f"With the **{RULE_NAMES[trace.rule]}** rule, query {i}'s scores are {format_vector(s)}; after "
            f"{masked}the softmax its largest weight, {format_number(w[j])}, goes to key {j}. ")
    d_q, d_k = trace.Q.shape[1], trace.K.shape[1]
    if trace.rule == "dot":
        return head + ("The score is the raw dot product: it grows with the length of q and k and with the width "
                       f"d_k = {d_k}, so large inputs give large score gaps and nearly one-hot weights. "
                       "The scaled rule divides by √d_k to prevent that.")
    if trace.rule == "scaled_dot":
        return head + (f"These are the dot products; each is divided by √d_k = {format_number(math.sqrt(d_k))} "
                       f"before the softmax, giving {format_vector(trace.scaled_scores[i])}.")
    if trace.rule == "general":
        alt = _dot_scores(trace, i)
        return head + (f"A matrix W [{d_q}×{d_k}] (seeded random here; learned in a real model) mixes the "
                       "features before comparing them: with W = I this is the dot product"
                       + (f", which would give {format_vector(alt)}" if alt is not None else "")
                       + ". q and k may have different widths.")
    if trace.rule == "additive":
        bound = float(np.abs(trace.params["v"]).sum())
        d_a = trace.params["v"].shape[0]
        return head + (f"q and k are projected into d_a = {d_a} dimensions, added, squashed by tanh into (−1, 1) "
                       f"and read out by v. Every score therefore lies within ±‖v‖₁ = ±{format_number(bound)}, "
                       "however large the inputs: the weights cannot become arbitrarily peaked."
                       + _saturation(trace.steps["hidden"]))
    hidden = trace.steps["hidden"][i]
    d_h = hidden.shape[-1]
    active = int((hidden[0] > 0).sum())
    return head + (f"A small MLP ({d_q + d_k} inputs [q; k] → {d_h} ReLU units → 1 score) reads each pair. It can "
                   f"learn any compatibility, not only similarity. For query {i} and key 0, {active} of {d_h} "
                   "hidden units are active.")


def mask_note(trace: AttentionTrace, kind: str) -> str:
    """Which keys each query may attend under the mask, and what masking does (Markdown)."""
    if trace.mask is None:
        return "No mask: every query may attend every key."
    allowed = [", ".join(str(j) for j in np.flatnonzero(r)) for r in trace.mask]
    lines = "; ".join(f"query {i} → keys {a}" for i, a in enumerate(allowed[:6]))
    what = {"causal": "Causal mask (top-left aligned): query i may attend keys 0..i only, so no query sees "
                      "a later position. ",
            "padding": "Padding mask: padded keys are filler and nobody may attend them. "}.get(kind, "")
    return (what + "Forbidden scores become −∞ before the softmax, so their weight is exactly 0 and the allowed "
            f"weights still sum to 1. Allowed: {lines}.")


def compare_rules(Q: np.ndarray, K: np.ndarray, V: np.ndarray,
                  mask: np.ndarray | None = None) -> dict[str, AttentionTrace | str]:
    """The same inputs under every rule (default parameters), or the reason a rule does not apply.

    Returns:
        ``{rule: trace or message}``.
    """
    out: dict[str, AttentionTrace | str] = {}
    for rule in RULE_NAMES:
        try:
            out[rule] = attention(Q, K, V, rule, mask)
        except ValueError as e:
            out[rule] = str(e)
    return out


def _saturation(hidden: np.ndarray) -> str:
    """A sentence on how many tanh units are saturated (|tanh| > 0.99), when many are."""
    sat = int((np.abs(hidden) > 0.99).sum())
    if sat * 2 < hidden.size:
        return ""
    return (f" Here {sat} of {hidden.size} tanh units are saturated (|tanh| > 0.99): large inputs push tanh to ±1 "
            "whichever key it is, so the scores barely differ and the weights are nearly uniform.")


def _dot_scores(trace: AttentionTrace, i: int) -> np.ndarray | None:
    if trace.Q.shape[1] != trace.K.shape[1]:
        return None
    return trace.K @ trace.Q[i]
