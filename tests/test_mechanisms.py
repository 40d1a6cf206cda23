"""attnviz.mechanisms against independent computations (explicit loops, scipy's softmax), in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

import attnviz
from attnviz import mechanisms as M
from attnviz.mechanisms import explain
from attnviz.mechanisms.fmt import format_number

TOL = 1e-9
RNG = np.random.default_rng(7)
Q = RNG.normal(size=(3, 4))
K = RNG.normal(size=(5, 4))
V = RNG.normal(size=(5, 2))


# ------------------------------------------------------------------ independent reference, written with loops

def ref_score(rule: str, q: np.ndarray, k: np.ndarray, p: dict) -> float:
    if rule == "dot":
        return sum(a * b for a, b in zip(q, k, strict=True))
    if rule == "scaled_dot":
        return sum(a * b for a, b in zip(q, k, strict=True)) / math.sqrt(len(k))
    if rule == "general":
        return sum(q[a] * p["W"][a, b] * k[b] for a in range(len(q)) for b in range(len(k)))
    if rule == "additive":
        total = 0.0
        for r in range(len(p["v"])):
            pre = sum(p["W_q"][r, a] * q[a] for a in range(len(q))) + sum(p["W_k"][r, b] * k[b] for b in range(len(k)))
            total += p["v"][r] * math.tanh(pre)
        return total
    if rule == "mlp":
        x = list(q) + list(k)
        total = float(p["b_2"])
        for r in range(len(p["w_2"])):
            pre = p["b_1"][r] + sum(p["W_1"][r, t] * x[t] for t in range(len(x)))
            total += p["w_2"][r] * max(pre, 0.0)
        return total
    raise AssertionError(rule)


def ref_attention(rule, Q, K, V, p, mask=None):
    nq, nk = len(Q), len(K)
    s = np.array([[ref_score(rule, Q[i], K[j], p) for j in range(nk)] for i in range(nq)])
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    w = scipy_softmax(s, axis=1)
    ctx = np.array([[sum(w[i, j] * V[j, c] for j in range(nk)) for c in range(V.shape[1])] for i in range(nq)])
    return s, w, ctx


# ------------------------------------------------------------------ every rule and mask

@pytest.mark.parametrize("rule", M.RULES)
@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_rule_matches_independent_computation(rule, mask_kind):
    mask = {"none": None, "causal": M.causal_mask(3, 5), "padding": M.padding_mask(3, [1, 4], 5)}[mask_kind]
    p = M.default_params(rule, 4, 4, seed=3)
    t = M.attention(Q, K, V, score=rule, mask=mask, params=p or None)
    s, w, ctx = ref_attention(rule, Q, K, V, p, mask)
    np.testing.assert_allclose(t.masked_scores, s, atol=TOL, rtol=0)
    np.testing.assert_allclose(t.weights, w, atol=TOL, rtol=0)
    np.testing.assert_allclose(t.context, ctx, atol=TOL, rtol=0)
    assert t.weights.dtype == np.float64 and t.context.shape == (3, 2)
    np.testing.assert_allclose(t.weights.sum(1), 1.0, atol=1e-12)
    if mask is not None:
        assert np.all(t.weights[~mask] == 0.0)


@pytest.mark.parametrize("rule", ["general", "additive", "mlp"])
def test_rules_with_parameters_allow_different_widths(rule):
    q = RNG.normal(size=(2, 3))
    p = M.default_params(rule, 3, 4, seed=1)
    t = M.attention(q, K, V, score=rule, params=p)
    _, w, ctx = ref_attention(rule, q, K, V, p)
    np.testing.assert_allclose(t.weights, w, atol=TOL, rtol=0)
    np.testing.assert_allclose(t.context, ctx, atol=TOL, rtol=0)
    for name, shape in M.param_shapes(rule, 3, 4, t.params[M.PARAM_NAMES[rule][0]].shape[0]).items():
        assert t.params[name].shape == shape


def test_default_params_are_seeded():
    a = M.attention(Q, K, V, "additive")
    b = M.attention(Q, K, V, "additive")
    c = M.attention(Q, K, V, "additive", seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.allclose(a.weights, c.weights)


def test_scaled_dot_intermediates():
    t = M.attention(Q, K, V, "scaled_dot")
    np.testing.assert_allclose(t.scores, np.einsum("qd,kd->qk", Q, K), atol=TOL)
    np.testing.assert_allclose(t.scaled_scores, t.scores / 2.0, atol=TOL)  # sqrt(d_k) = sqrt(4)
    assert t.scale == 0.5
    assert t.shape_of("weights") == "[query=3, key=5]" and t.shape_of("context") == "[query=3, d_v=2]"


def test_additive_steps_are_kept():
    t = M.attention(Q, K, V, "additive")
    d_a = t.params["v"].shape[0]
    assert t.steps["hidden"].shape == (3, 5, d_a)
    np.testing.assert_allclose(t.steps["hidden"] @ t.params["v"], t.scores, atol=TOL)
    assert t.shape_of("hidden") == f"[query=3, key=5, d_hidden={d_a}]"


# ------------------------------------------------------------------ the classic example and known facts

def test_classic_example_numbers():
    c = M.CLASSIC
    t = M.attention(c.Q, c.K, c.V, "dot")
    assert t.scores.tolist() == [[32.0, 50.0, 68.0]]
    e = np.exp(np.array([32.0, 50.0, 68.0]) - 68.0)
    np.testing.assert_allclose(t.weights[0], e / e.sum(), rtol=1e-12)
    assert t.weights[0, 0] == pytest.approx(2.3195228302435696e-16, rel=1e-9)
    assert t.weights[0, 1] == pytest.approx(1.522997951276035e-08, rel=1e-9)
    np.testing.assert_allclose(t.context[0], t.weights[0] @ c.V, rtol=1e-12)
    assert t.context[0] == pytest.approx([19 - 3 * t.weights[0, 1] - 6 * t.weights[0, 0],
                                          20 - 3 * t.weights[0, 1] - 6 * t.weights[0, 0],
                                          21 - 3 * t.weights[0, 1] - 6 * t.weights[0, 0]], rel=1e-12)
    s = M.attention(c.Q, c.K, c.V, "scaled_dot")
    np.testing.assert_allclose(s.scaled_scores[0], np.array([32, 50, 68]) / math.sqrt(3), rtol=1e-12)
    assert s.weights[0].max() < t.weights[0].max()  # scaling softens the softmax


def test_softmax_of_31_41_51_is_not_the_tutorial_claim():
    w = M.softmax(np.array([31.0, 41.0, 51.0]))
    z = 1 + math.exp(-10) + math.exp(-20)  # softmax is shift-invariant: divide through by e^51
    np.testing.assert_allclose(w, [math.exp(-20) / z, math.exp(-10) / z, 1 / z], rtol=1e-12)
    np.testing.assert_allclose(w, [2.0610600e-09, 4.5397868e-05, 0.9999546], rtol=1e-7)
    assert not np.allclose(w, [0.215, 0.366, 0.419], atol=0.1)
    tut = M.TUTORIAL
    t = M.attention(tut.Q, tut.K, tut.V, "dot")
    assert t.scores.tolist() == [[31.0, 41.0, 51.0]]
    assert [format_number(x) for x in t.weights[0]] == ["2.061e-09", "4.540e-05", "0.99995"]


def test_softmax_is_stable_for_huge_scores():
    w = M.softmax(np.array([[1000.0, 1001.0, 999.0], [-1e308, 0.0, 1.0]]))
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w[0], scipy_softmax([0.0, 1.0, -1.0]), rtol=1e-12)


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_softmax_of_no_scores_is_a_clear_error(shape):
    for fn in (M.softmax, M.log_softmax):
        with pytest.raises(ValueError, match=rf"^{fn.__name__} needs at least one score, got shape"):
            fn(np.zeros(shape))
    assert M.softmax(np.zeros((0, 3))).shape == (0, 3)  # no rows: nothing to normalise, not an error


def test_random_projections_of_zero_width_are_a_clear_error():
    with pytest.raises(ValueError, match="widths of at least 1, got d=0 and d_v=2"):
        M.random_projections(0, 2)


# ------------------------------------------------------------------ masks

def test_mask_helpers():
    assert M.causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert M.causal_mask(2, 4).tolist() == [[True, False, False, False], [True, True, False, False]]
    pm = M.padding_mask(2, [2], 3)
    assert pm.tolist() == [[True, True, False], [True, True, False]]
    assert M.padding_mask(1, np.array([False, True]), 2).tolist() == [[True, False]]
    with pytest.raises(ValueError, match="0..2"):
        M.padding_mask(1, [3], 3)


def test_causal_rows_attend_only_to_the_past():
    t = M.attention(K, K, V, "scaled_dot", mask=M.causal_mask(5))
    assert np.all(np.triu(t.weights, 1) == 0)
    assert t.weights[0, 0] == 1.0


def test_fully_masked_row_is_a_clear_error_not_nan():
    mask = M.padding_mask(3, [0, 1, 2, 3, 4], 5)
    with pytest.raises(ValueError, match="every key masked"):
        M.attention(Q, K, V, "dot", mask=mask)
    with pytest.raises(ValueError, match="every key masked"):
        M.softmax(np.array([-np.inf, -np.inf]))


def test_log_weights_match_an_independent_log_softmax():
    mask = M.padding_mask(3, [2], 5)
    for rule in M.RULES:
        t = M.attention(Q, K, V, rule, mask=mask)
        for i in range(3):
            row = [float(x) for x in t.masked_scores[i] if np.isfinite(x)]
            top = max(row)
            lse = top + math.log(math.fsum(math.exp(x - top) for x in row))
            want = [x - lse if np.isfinite(x) else -np.inf for x in t.masked_scores[i]]
            np.testing.assert_allclose(t.log_weights[i], want, atol=TOL, rtol=0)
        np.testing.assert_allclose(np.exp(t.log_weights), t.weights, atol=TOL, rtol=0)


def test_weights_that_underflow_float64_are_written_from_their_logs():
    """The classic example times 50: dot scores 50x[32, 50, 68], so two weights are below 1e-308 and are 0 in
    float64. They must still be written as tiny numbers with the right exponent, never as 0; the masked one is 0."""
    c = M.CLASSIC
    q = 50 * c.Q
    t = M.attention(q, c.K, c.V, "dot", mask=np.array([[True, True, True]]))
    assert t.weights[0, 0] == 0.0 and t.weights[0, 1] == 0.0  # float64 underflow
    s = [math.fsum(a * b for a, b in zip(q[0], k, strict=True)) for k in c.K]
    lse = max(s) + math.log(math.fsum(math.exp(x - max(s)) for x in s))
    labels = M.format_probabilities(t.weights, t.log_weights)[0]
    latex = explain.worked_softmax(t)[-1]
    for x, label in zip(s[:2], labels, strict=False):
        log10 = (x - lse) / math.log(10)
        mant, exp = label.split("e")
        assert abs(math.log10(float(mant)) + int(exp) - log10) < 3e-4, (label, log10)
        assert int(exp) == math.floor(log10) and f"{mant} \\times 10^{{{int(exp)}}}" in latex
    rest = (s[1] - s[2] + math.log1p(math.exp(s[0] - s[1]))) / math.log(10)  # log10 of the two others' weight
    mant, exp = labels[2].removeprefix("1 - ").split("e")  # 1.0 in float64, but not 1
    assert abs(math.log10(float(mant)) + int(exp) - rest) < 3e-4, (labels[2], rest)
    gap = sorted(s)[-1] - sorted(s)[-2]  # the weights of the two best keys differ by e^gap, beyond float64 here
    assert gap > 710 and f"e+{math.floor(gap / math.log(10))} without scaling" in M.scaling_note(q, c.K)
    masked = M.attention(q, c.K, c.V, "dot", mask=np.array([[False, True, True]]))
    assert M.format_probabilities(masked.weights, masked.log_weights)[0][0] == "0"


def test_subnormal_weights_keep_four_significant_digits():
    """A weight between 5e-324 and 2.2e-308 is a subnormal float64 with few digits left: written from its log."""
    for gap in (709.0, 720.0, 740.0, 744.0, 745.0):
        t = M.attention([[1.0]], [[0.0], [gap]], [[0.0], [1.0]], "dot")
        label = M.format_probabilities(t.weights, t.log_weights)[0][0]
        mant, exp = label.split("e")
        assert abs(math.log10(float(mant)) + int(exp) + gap / math.log(10)) < 3e-4, (gap, label)


def test_format_exp_beyond_float64():
    for log_x in np.linspace(-2000, 2000, 401):
        mant, exp = (M.format_exp(log_x).split("e") + ["0"])[:2]
        assert abs(math.log10(float(mant)) + int(exp) - log_x / math.log(10)) < 3e-4, log_x
        if abs(log_x) < 700:
            assert M.format_exp(log_x) == M.format_number(math.exp(log_x))


@pytest.mark.parametrize("rule", M.RULES)
def test_overflowing_inputs_are_a_clear_error(rule):
    """Entries near float64's limit: the scores overflow for every rule but additive (tanh saturates); either a
    ValueError that says so, or finite weights. Never NaN, never a traceback from the explanations."""
    big = np.full((1, 3), 1e308)
    try:
        t = M.attention(big, M.CLASSIC.K, M.CLASSIC.V, rule)
    except ValueError as e:
        assert "overflowed" in str(e) and "smaller numbers" in str(e)
    else:
        assert np.all(np.isfinite(t.weights)) and np.all(np.isfinite(t.context))
        assert M.rule_note(t)
    note = M.scaling_note(big, M.CLASSIC.K)
    assert "overflowed" in note


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="same width"):
        M.attention(Q[:, :3], K, V, "dot")
    with pytest.raises(ValueError, match="every key needs"):
        M.attention(Q, K, V[:4], "dot")
    with pytest.raises(ValueError, match="Unknown scoring rule"):
        M.attention(Q, K, V, "cosine")
    with pytest.raises(ValueError, match="NaN"):
        M.attention([[np.nan, 1, 1, 1]], K, V)
    with pytest.raises(ValueError, match="shape"):
        M.attention(Q, K, V, "general", params={"W": np.eye(3)})
    with pytest.raises(ValueError, match="mask"):
        M.attention(Q, K, V, mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="no parameters"):
        M.attention(Q, K, V, "dot", params={"W": np.eye(4)})


# ------------------------------------------------------------------ multi-head

@pytest.mark.parametrize("rule", M.RULES)
def test_one_head_equals_single_head_attention(rule):
    """heads=1: split and merge change nothing, for every rule (the head's learned parameters are the single-head
    defaults), with and without a mask."""
    mask = M.causal_mask(3, 5)
    p = M.random_projections(4, 2, seed=5)
    mh = M.multi_head_attention(Q, K, V, 1, score=rule, mask=mask, params=p)
    single = M.attention(Q @ p["W_q"], K @ p["W_k"], V @ p["W_v"], rule, mask)
    np.testing.assert_allclose(mh.heads[0].weights, single.weights, atol=TOL, rtol=0)
    np.testing.assert_allclose(mh.output, single.context @ p["W_o"], atol=TOL, rtol=0)
    ident = M.multi_head_attention(Q, K, V, 1, score=rule, params=M.identity_projections(4, 2))
    np.testing.assert_allclose(ident.output, M.attention(Q, K, V, rule).context, atol=TOL, rtol=0)


def test_multi_head_split_attend_concat_project():
    p = M.random_projections(4, 2, seed=2)
    mask = M.causal_mask(3, 5)
    mh = M.multi_head_attention(Q, K, V, 2, params=p, mask=mask)
    qp, kp, vp = Q @ p["W_q"], K @ p["W_k"], V @ p["W_v"]
    outs = []
    for h in range(2):
        qs, ks, vs = qp[:, 2 * h:2 * h + 2], kp[:, 2 * h:2 * h + 2], vp[:, h:h + 1]
        _, w, ctx = ref_attention("scaled_dot", qs, ks, vs, {}, mask)
        np.testing.assert_allclose(mh.heads[h].weights, w, atol=TOL)
        outs.append(ctx)
    np.testing.assert_allclose(mh.concat, np.hstack(outs), atol=TOL)
    np.testing.assert_allclose(mh.output, np.hstack(outs) @ p["W_o"], atol=TOL)
    assert mh.weights.shape == (2, 3, 5) and mh.Q_heads.shape == (2, 3, 2) and mh.V_heads.shape == (2, 5, 1)
    np.testing.assert_array_equal(M.merge_heads(M.split_heads(qp, 2)), qp)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="not divisible by 3 heads.*1, 2 or 4"):
        M.multi_head_attention(Q, K, V, 3)


@pytest.mark.parametrize("rule", ["general", "additive", "mlp"])
def test_multi_head_with_learned_rules(rule):
    mh = M.multi_head_attention(Q, K, V, 2, score=rule)
    for h, t in enumerate(mh.heads):
        _, w, _ = ref_attention(rule, mh.Q_heads[h], mh.K_heads[h], mh.V_heads[h], t.params)
        np.testing.assert_allclose(t.weights, w, atol=TOL)


# ------------------------------------------------------------------ formatting and explanations

def test_formatter_never_prints_zero_for_a_positive_number():
    for x in np.concatenate([np.logspace(-320, 5, 2000), [5e-324, 1e-300, 2.3195e-16, 0.00099996, 0.0009999999]]):
        s = format_number(x)
        assert float(s) > 0 and s not in ("0", "0.0", "0.000"), (x, s)
    for x in [1 - 1e-16, 0.9999546, 0.99999998, 1 - 1e-9]:
        assert float(format_number(x)) != 1.0, x
    assert format_number(2.061153622438558e-09) == "2.061e-09"
    assert format_number(0.2155) == "0.2155" and format_number(32.0) == "32" and format_number(0.0) == "0"
    assert format_number(-np.inf) == "-inf" and format_number(1.0) == "1"
    assert format_number(18.475208614068023) == "18.48"


def test_formatter_keeps_four_significant_digits():
    for x in RNG.uniform(-1e4, 1e4, 500):
        assert float(format_number(x)) == pytest.approx(x, rel=6e-4)


def test_explanations_use_the_current_numbers():
    c = M.CLASSIC
    note = M.scaling_note(c.Q, c.K)
    assert "[32, 50, 68]" in note and "[18.48, 28.87, 39.26]" in note and "saturated" in note
    t = M.attention(c.Q, c.K, c.V, "dot")
    assert explain.worked_score(t)[0] == r"s_{00} = 1 \cdot 4 + 2 \cdot 5 + 3 \cdot 6 = 32"
    assert "2.320 \\times 10^{-16}" in explain.worked_softmax(t)[-1]
    cmp = M.compare_rules(c.Q, c.K, c.V)
    assert set(cmp) == set(M.RULES)
    for rule, trace in cmp.items():
        np.testing.assert_array_equal(trace.weights, M.attention(c.Q, c.K, c.V, rule).weights)
    for rule in M.RULES:
        assert M.rule_note(M.attention(c.Q, c.K, c.V, rule))


def test_read_matrix_messages():
    assert M.read_matrix([[1, "2.5"], [3, 4]], "K").tolist() == [[1, 2.5], [3, 4]]
    for bad, msg in [([[1, "abc"]], "row 1, column 2 is 'abc'"), ([[1, None]], "empty"), ([], "empty"),
                     ([[1, float("nan")]], "NaN"), ([[1, 2], [3]], "equally long"), ([[1, "inf"]], "infinite")]:
        with pytest.raises(ValueError, match=msg):
            M.read_matrix(bad, "K")


def test_public_entry_point():
    t = attnviz.mechanisms.attention([1, 2, 3], M.CLASSIC.K, M.CLASSIC.V, score="scaled_dot")
    assert t.weights.shape == (1, 3) and t.context.shape == (1, 3)


def test_format_exp_is_exact_for_large_logs_and_writes_the_power_beyond():
    """Mantissa and exponent come from the log in 100-digit decimal arithmetic (a float64 division is already off
    in the 4th digit at a log of 3e12); beyond EXACT_LOG_UP_TO the float64 log itself cannot fix 4 digits, so the
    power is written."""
    from decimal import Decimal, getcontext
    getcontext().prec = 80
    ln10 = Decimal(10).ln()
    for log_x in (-1e3, -123456.789, -3e9, -9.87654321e9, 5e9):
        log10 = Decimal(log_x) / ln10
        exp = int(log10.to_integral_value(rounding="ROUND_FLOOR"))
        want = f"{float(10 ** (log10 - exp)):.3f}e{exp:+03d}"
        assert M.format_exp(log_x) == want, log_x
    assert M.format_exp(-3e12) == "e^(-3.000e+12)"
    assert M.latex_text(M.format_exp(-3e12)) == r"e^{-3.000 \times 10^{12}}"
    t = M.attention([[1e12, 0.0, 0.0]], M.CLASSIC.K, M.CLASSIC.V, "dot")
    labels = M.format_probabilities(t.weights, t.log_weights)[0]
    assert labels[0] == "e^(-6.000e+12)" and labels[1] == "e^(-3.000e+12)"


def test_a_weight_of_one_in_float64_is_written_as_one_minus_the_rest():
    """Dot scores 20x[32, 50, 68]: the best key's weight is 1 - 8.757e-27, exactly 1.0 in float64."""
    t = M.attention([[20.0, 0.0, 0.0]], M.CLASSIC.K, M.CLASSIC.V, "dot")
    assert t.weights[0, 2] == 1.0
    labels = M.format_probabilities(t.weights, t.log_weights)[0]
    rest = math.exp(-20 * 3 * 2) + math.exp(-20 * 3)  # e^(s_j - s_2) for the two other keys
    assert labels[2] == f"1 - {rest:.3e}" == "1 - 8.757e-27"
    assert M.latex_text(labels[2]) == r"1 - 8.757 \times 10^{-27}"
    assert "one key takes 1 - 8.757e-27 of the weight" in M.scaling_note(t.Q, t.K)
    one = M.attention([[1.0]], [[2.0]], [[3.0]], "dot")  # a single key: its weight is exactly 1
    assert M.format_probabilities(one.weights, one.log_weights) == [["1"]]
    masked = M.attention([[20.0, 0.0, 0.0]], M.CLASSIC.K, M.CLASSIC.V, "dot", mask=np.array([[False, False, True]]))
    assert M.format_probabilities(masked.weights, masked.log_weights) == [["0", "0", "1"]]


@pytest.mark.parametrize("n_keys", [3, 6, 7, 8, 9, 12])
def test_worked_softmax_lines_up_exponents_and_weights_and_gives_the_sum(n_keys):
    rng = np.random.default_rng(n_keys)
    t = M.attention(rng.normal(size=(2, 3)), rng.normal(size=(n_keys, 3)), rng.normal(size=(n_keys, 2)), "dot")
    _, total, weights = explain.worked_softmax(t, 1)
    fraction = weights.split(r"\frac{")[1].split(r"\right]}")[0]
    right = weights.rsplit(r"\left[", 1)[1]
    n_left = fraction.count("e^{") + fraction.count(r"\dots")
    n_right = right.count(",") + 1
    assert n_left == n_right  # the same entries (and ellipsis) on both sides
    row = t.masked_scores[1]
    z = math.fsum(math.exp(x - row.max()) for x in row)
    assert total.endswith(f"= {M.latex_number(z)}") and f"}}{{{M.latex_number(z)}}} = " in weights
