"""The corpus pipeline on a local Ray (one per session), two runs in all: the numbers equal the Python API's, and a
rerun resumes where a worker is killed, with the same bits (every input format reads the same ids and texts:
test_corpus_parts)."""
from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest

from attnviz.analysis import head_stats
from attnviz.cli import main as cli_main
from attnviz.corpus.per_text import STAT_NAMES
from attnviz.corpus.pipeline import CorpusJob, run_corpus
from attnviz.corpus.store import part_path
from tests.corpus_texts import TEXTS, write_jsonl, write_txt

SIZES = {"batch": 4, "shard": 12, "top_k": 3, "positions": 2}
"""36 texts: 3 shards of 3 batches each."""
PER_TEXT = 1e-5
"""Tolerance of one text's numbers (min, max, top values); corpus means and deviations are held to 1e-6."""
ACTOR_TITLE = "StatsWorker"
"""Part of the process title Ray gives the corpus actors (``ray::MapWorker(MapBatches(StatsWorker))``)."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus_in")
    return {"txt": write_txt(d / "c.txt"), "jsonl": write_jsonl(d / "c.jsonl")}


@pytest.fixture(scope="module")
def baseline(ray_local, inputs, tmp_path_factory):
    """An undisturbed run on the .txt input through the command line, 2 workers."""
    out = tmp_path_factory.mktemp("corpus") / "baseline"
    code = cli_main(["corpus", "--model", "minilm", "--input", str(inputs["txt"]), "--out", str(out), "--workers", "2",
                     *(f"--{k.replace('_', '-')}={v}" for k, v in SIZES.items())])
    assert code == 0
    return out, json.loads((out / "corpus.json").read_text())


def _tables(out):
    return pq.read_table(out / "heads.parquet"), pq.read_table(out / "top.parquet")


def _assert_same_results(out, reference):
    heads, top = _tables(out)
    ref_heads, ref_top = _tables(reference)
    assert heads.equals(ref_heads)  # the same bits: exact merge order, deterministic batches
    assert top.equals(ref_top)


def _api_values(minilm):
    """[text, layer, head, stat] from ``minilm.run`` + ``head_stats``, for the texts the model reads; and their ids."""
    values, ids = [], []
    for i, text in enumerate(TEXTS):
        try:
            r = minilm.run(text=text)
        except ValueError:
            continue
        s = head_stats(r.weights, r.tokens, r.special)
        values.append(np.stack([s.get(name) for name in STAT_NAMES], -1))
        ids.append(i if i < 3 else i + 1)  # the blank line after the third text keeps its number
    return np.stack(values), np.array(ids)


def test_numbers_equal_the_python_api(baseline, minilm):
    out, info = baseline
    values, ids = _api_values(minilm)
    heads, top = _tables(out)
    assert info["texts"] == len(values) == len(TEXTS) - 1 and info["skipped"] == 1
    n_layers, n_heads = values.shape[1:3]
    cols = {c: heads[c].to_numpy() for c in ("layer", "head", "mean", "std", "min", "max", "count")}
    stat_index = np.array([STAT_NAMES.index(s) for s in heads["stat"].to_pylist()])
    per_row = values[:, cols["layer"], cols["head"], stat_index]  # [text, row]
    assert (cols["count"] == len(values)).all()
    np.testing.assert_allclose(cols["mean"], per_row.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(cols["std"], per_row.std(0), rtol=0, atol=1e-6)
    # one text's value moves by float error with the batch's shape, or the thread count: the API's own numbers
    # differ by up to 1.6e-6 between 1 and 2 torch threads (MiniLM, 100 sentences), so per-text numbers get 1e-5
    np.testing.assert_allclose(cols["min"], per_row.min(0), rtol=0, atol=PER_TEXT)
    np.testing.assert_allclose(cols["max"], per_row.max(0), rtol=0, atol=PER_TEXT)
    for row, (hist, edges) in enumerate(zip(heads["hist"].to_pylist(), heads["hist_edges"].to_pylist(),
                                            strict=True)):
        v = per_row[:, row]
        near_edge = (np.abs(v[:, None] - np.array(edges[1:-1])[None]) < PER_TEXT).any(1).sum()  # may fall either side
        assert np.abs(np.array(hist) - np.histogram(v, bins=edges)[0]).sum() <= 2 * near_edge
    # the top 3 of every head and statistic: the API's 3 largest values, each the value of the text it names
    t = {c: top[c].to_numpy() for c in ("layer", "head", "rank", "id", "value")}
    t_stat = np.array([STAT_NAMES.index(s) for s in top["stat"].to_pylist()])
    assert len(top) == n_layers * n_heads * len(STAT_NAMES) * 3
    row_of_id = {int(i): k for k, i in enumerate(ids)}
    for layer, head, s in [(0, 0, 0), (2, 5, 6), (5, 11, 8), (3, 7, 4), (1, 3, 1)]:
        v = values[:, layer, head, s]
        sel = (t["layer"] == layer) & (t["head"] == head) & (t_stat == s)
        order = np.argsort(t["rank"][sel])
        got_values, got_ids = t["value"][sel][order], t["id"][sel][order]
        np.testing.assert_allclose(got_values, np.sort(v)[::-1][:3], rtol=0, atol=PER_TEXT)
        np.testing.assert_allclose(got_values, v[[row_of_id[int(i)] for i in got_ids]], rtol=0, atol=PER_TEXT)


def test_positions_name_the_largest_terms(baseline, minilm):
    """For the previous-token share, the named cells are (q, q-1) with the largest w[q, q-1] of that text."""
    _, top = _tables(baseline[0])
    rows = [r for r in top.to_pylist() if r["stat"] == "prev" and r["rank"] == 0][:6]
    for r in rows:
        w = minilm.run(text=r["text"]).head(r["layer"], r["head"]).astype(np.float64)
        sub = np.diagonal(w, offset=-1)  # w[q, q-1] for q = 1..n-1
        best = np.argsort(-sub, kind="stable")[:len(r["query"])] + 1
        assert r["key"] == [q - 1 for q in r["query"]]
        np.testing.assert_array_equal(np.sort(sub[np.array(r["query"]) - 1]), np.sort(sub[best - 1]))


def test_the_command_line_reports_counts(baseline):
    info = baseline[1]
    assert (info["texts"], info["skipped"], info["computed"], info["resumed"]) == (35, 1, 36, 0)
    assert info["input"]["sha256"] and info["model"] == "minilm" and info["seconds"] > 0


def test_a_rerun_resumes_and_a_killed_worker_costs_only_time(baseline, inputs, tmp_path):
    """A rerun into a folder that lost its middle shard computes only that shard, on 2 workers one of which is
    SIGKILLed after the first batch is in (Ray restarts it and reruns its batches): the same bits as the baseline.
    A rerun with all shards done runs nothing on Ray; one with other settings or input is refused."""
    out = tmp_path / "resumed"
    shutil.copytree(baseline[0], out)
    for name in ("heads.parquet", "top.parquet", "corpus.json"):
        (out / name).unlink()
    part_path(out, 12, 24).unlink()  # the middle shard is lost
    seen, killed = [], []

    def kill_one(done: int, total: int) -> None:
        seen.append(done)
        if done == seen[0] or killed:
            return
        me = psutil.Process()
        workers = [p for p in me.children(recursive=True) if ACTOR_TITLE in " ".join(_cmdline(p))]
        assert workers, "no corpus actor process found"
        os.kill(workers[0].pid, signal.SIGKILL)
        killed.append(workers[0].pid)

    info = run_corpus(CorpusJob("minilm", inputs["txt"], out, workers=2, **SIZES), kill_one)
    assert killed
    assert seen[0] == 24 and seen[-1] == 36  # progress starts at the shards already done
    assert (info["resumed"], info["computed"], info["texts"]) == (24, 12, 35)
    _assert_same_results(out, baseline[0])
    again = run_corpus(CorpusJob("minilm", inputs["txt"], out, **SIZES))  # all done: no Ray work at all
    assert (again["resumed"], again["computed"], again["workers"]) == (36, 0, None)
    _assert_same_results(out, baseline[0])
    with pytest.raises(ValueError, match="top_k"):
        run_corpus(CorpusJob("minilm", inputs["txt"], out, **(SIZES | {"top_k": 5})))
    with pytest.raises(ValueError, match="input_sha256"):
        run_corpus(CorpusJob("minilm", inputs["jsonl"], out, **SIZES))


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def test_a_cluster_without_a_free_cpu_is_refused(ray_local, inputs, tmp_path, monkeypatch):
    """Every CPU held (by the app's model pools, say): a message, not a pool that waits for ever."""
    from attnviz.corpus import pipeline

    monkeypatch.setattr(pipeline, "_free_cpus", lambda: 0)
    with pytest.raises(ValueError, match="no free CPU: all 2 are held"):
        run_corpus(CorpusJob("minilm", inputs["txt"], tmp_path / "o", **SIZES))
    assert not list((tmp_path / "o" / "parts").iterdir())
