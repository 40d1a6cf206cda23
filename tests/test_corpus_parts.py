"""The corpus pipeline's pieces without Ray: the batched forward, one text's statistics and positions, the
summary's merge, the input formats, the parts on disk and the results a page may open."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attnviz.analysis import head_stats
from attnviz.analysis.stats import token_masks
from attnviz.cli import main as cli_main
from attnviz.corpus.batch import compute_groups, encode_batch, head_stats_batch, summarise_batch
from attnviz.corpus.inputs import read_corpus
from attnviz.corpus.per_text import STAT_NAMES, terms, text_stats, top_cells
from attnviz.corpus.plan import plan
from attnviz.corpus.reduce import BINS, empty, merge, summarise
from attnviz.corpus.results import list_results, open_results
from attnviz.corpus.store import read_part, write_part, write_results
from tests.corpus_texts import TEXTS, write_jsonl, write_parquet, write_txt

LONG = "word " * 700  # past MiniLM's 512 tokens: cut, and flagged


def test_batched_forward_equals_one_text_at_a_time(minilm):
    """Texts of many lengths in one batch, grouped by token count: each text's token count and flag are those of
    ``run`` and its weights equal up to float error (a batch takes other paths through the matrix products: up to
    1.1e-6 seen)."""
    texts = [t for t in TEXTS if t != "\x00\x01"][:12] + [LONG, "more " + LONG]
    encoded = encode_batch(minilm, texts)
    groups = compute_groups(minilm, encoded)
    assert sorted(i for g in groups for i in g.members) == list(range(len(texts)))
    assert all(len({encoded[i].n_tokens for i in g.members}) == 1 for g in groups)
    assert [len(g.members) for g in groups if g.n == minilm.max_tokens] == [1, 1]  # 75 MB of weights each: apart
    for g in groups:
        for j, i in enumerate(g.members):
            want = minilm.run(text=texts[i])
            assert encoded[i].n_tokens == want.n_tokens and encoded[i].truncated == want.truncated
            np.testing.assert_allclose(g.weights()[:, j], want.weights, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(g.weights(np.array([j]))[:, 0], g.weights()[:, j])
    assert encoded[-1].truncated and encoded[-1].n_tokens == minilm.max_tokens
    assert encode_batch(minilm, ["", "\x00\x01", "ok"])[:2] == [None, None]


def test_a_batch_summary_names_positions_of_its_top_texts_only(minilm):
    """``summarise_batch`` equals the summary of every text's statistics and positions (``head_stats_batch``), and
    a refused text is counted as skipped."""
    texts = TEXTS[:10]
    ids = np.arange(100, 100 + len(texts))
    got = summarise_batch(minilm, ids, texts, top_k=3, n_positions=2)
    want = summarise(ids, head_stats_batch(minilm, texts, 2), minilm.n_layers, minilm.n_heads, 3, 2)
    assert (got.count, got.tokens, got.skipped) == (want.count, want.tokens, want.skipped) and got.skipped
    for name in ("sum", "sumsq", "min", "max", "top_value", "top_id", "top_pos"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    for name in STAT_NAMES:
        np.testing.assert_array_equal(got.hist[name], want.hist[name])


def test_head_stats_batch_equals_the_api_and_skips_refused_texts(minilm):
    texts = TEXTS[:8]  # holds "\x00\x01", which run() refuses
    got = head_stats_batch(minilm, texts, n_positions=2)
    for text, stats in zip(texts, got, strict=True):
        try:
            r = minilm.run(text=text)
        except ValueError:
            assert stats is None
            continue
        want = head_stats(r.weights, r.tokens, r.special)
        np.testing.assert_allclose(stats.values, np.stack([want.get(s) for s in STAT_NAMES], -1), rtol=0, atol=1e-5)
        assert stats.n_tokens == r.n_tokens and stats.positions.shape == (6, 12, len(STAT_NAMES), 2, 2)
    assert sum(s is None for s in got) == 1


def test_terms_add_up_to_each_statistic(minilm):
    """``value = mean over queries of the row sums of the terms`` (prev/next: over the queries that have one)."""
    r = minilm.run(text="Hello, world; how are you?")
    w = r.weights.astype(np.float64)
    stats = head_stats(w, r.tokens, r.special)
    masks = token_masks(r.tokens, r.special)
    n = r.n_tokens
    for name in STAT_NAMES:
        for layer in (0, 5):
            t, q, _ = terms(w[layer], name, masks)
            rows = np.stack([np.bincount(q, weights=t[h], minlength=n) for h in range(w.shape[1])])
            n_queries = n - 1 if name in ("prev", "next") else n
            np.testing.assert_allclose(rows.sum(-1) / n_queries, stats.get(name)[layer], rtol=0, atol=1e-12)


def test_positions_of_a_pure_previous_token_head():
    """A head that puts everything on the previous token: its top cells are (q, q-1); a head with no
    punctuation key names no punctuation cell."""
    n = 5
    w = np.zeros((1, 1, n, n), dtype=np.float32)
    w[0, 0, 0, 0] = 1
    w[0, 0, np.arange(1, n), np.arange(n - 1)] = [0.9, 1.0, 0.8, 1.0]
    w[0, 0, [1, 3], [1, 3]] = [0.1, 0.2]
    tokens = ["[CLS]", "a", "b", "c", "[SEP]"]
    s = text_stats(w, tokens, None, n_positions=3)
    prev = s.positions[0, 0, STAT_NAMES.index("prev")]
    assert prev.tolist() == [[2, 1], [4, 3], [1, 0]]  # 1.0, 1.0 (ties by cell), 0.9
    assert (s.positions[0, 0, STAT_NAMES.index("punct")] == -1).all()
    one = text_stats(w, tokens, None, n_positions=1)  # the tie at 1.0 cut after one cell: the smaller cell
    assert one.positions[0, 0, STAT_NAMES.index("prev")].tolist() == [[2, 1]]


def test_cells_of_many_heads_at_once_tie_to_the_smaller_cell():
    """``top_cells`` over rows of heads: the largest terms first; of equal terms cut by ``n``, the smaller cells."""
    rng = np.random.default_rng(2)
    w = rng.random((50, 6, 6))
    w[:25] = np.round(w[:25] * 4) / 4  # many equal weights
    w /= w.sum(-1, keepdims=True)
    got = top_cells(w, "distance", 4)
    for row, cells in zip(w, got, strict=True):
        t = (row * np.abs(np.arange(6)[:, None] - np.arange(6)[None])).ravel()
        best = np.argsort(-t, kind="stable")[:4]  # largest first, ties by cell
        best = best[t[best] > 0]
        assert cells[:len(best)].tolist() == [[c // 6, c % 6] for c in best] and (cells[len(best):] == -1).all()


def _summary_of(values: np.ndarray, ids: list[int], top_k: int = 3):
    """A batch summary from made-up ``[text, layer, head, stat]`` values."""
    from attnviz.corpus.per_text import TextStats

    texts = [TextStats(v, np.zeros((*v.shape, 2, 2), np.int32) + i, 4, False) for i, v in zip(ids, values, strict=True)]
    return summarise(ids, texts, *values.shape[1:3], top_k, 2)


def test_merge_is_exact_whatever_the_grouping():
    rng = np.random.default_rng(0)
    values = rng.random((40, 2, 3, len(STAT_NAMES)))
    values[7] = values[3]  # a tie: the smaller id ranks first
    ids = list(range(100, 140))
    whole = _summary_of(values, ids)
    pieces = merge([_summary_of(values[a:b], ids[a:b]) for a, b in ((0, 5), (5, 6), (6, 40))])
    other = merge([_summary_of(values[a:b], ids[a:b]) for a, b in ((0, 20), (20, 40))] + [empty(2, 3, 3, 2)])
    for m in (pieces, other):
        assert m.count == 40
        for name in ("min", "max", "top_value", "top_id", "top_pos"):
            np.testing.assert_array_equal(getattr(m, name), getattr(whole, name))
        for name in STAT_NAMES:
            np.testing.assert_array_equal(m.hist[name], whole.hist[name])
        np.testing.assert_allclose(m.sum, whole.sum, rtol=1e-13)
        np.testing.assert_allclose(m.std(), values.std(0), rtol=1e-9)
    assert whole.top_id[0, 0, 0].tolist() == list(np.array(ids)[np.lexsort((ids, -values[:, 0, 0, 0]))][:3])
    assert whole.hist["cls"].sum(-1).tolist() == [[40] * 3] * 2
    with pytest.raises(ValueError, match="different shapes"):
        merge([whole, empty(2, 3, 5, 2)])


def test_bins_hold_their_edges_and_clip():
    from attnviz.corpus.reduce import bin_index

    assert bin_index("cls", np.array([0.0, 0.05, 0.999, 1.0, 1.0000001])).tolist() == [0, 1, 19, 19, 19]
    assert bin_index("distance", np.array([0.1, 9000.0])).tolist() == [0, len(BINS["distance"]) - 2]


def test_all_three_formats_read_the_same_ids_and_texts(tmp_path):
    corpora = [read_corpus(w(tmp_path / f"c.{ext}")) for w, ext in
               ((write_txt, "txt"), (write_jsonl, "jsonl"), (write_parquet, "parquet"))]
    for c in corpora:
        assert c.texts == TEXTS and c.ids.tolist() == [0, 1, 2, *range(4, 37)] and c.n_in_file == 36
    assert len({c.sha256 for c in corpora}) == 3
    assert read_corpus(tmp_path / "c.txt", limit=5).texts == TEXTS[:5]
    assert corpora[0].text(4) == TEXTS[3]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("c.csv", "a\n", "must be a .txt, .jsonl, .parquet"),
    ("c.txt", "\n \n", "holds no text"),
    ("c.jsonl", '{"text": "ok"}\n[1, 2]\n', "line 2: expected an object"),
    ("c.jsonl", '{"text": "ok"}\n{"text": \n', "line 2: not JSON"),
    ("c.jsonl", '{"body": "ok"}\n', "line 1: no field"),
])
def test_unusable_inputs_say_what_is_wrong(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_corpus(tmp_path / name)


def test_unusable_binary_inputs(tmp_path):
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_corpus(tmp_path / "latin.txt")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nocol.parquet")
    with pytest.raises(ValueError, match='no column "text"'):
        read_corpus(tmp_path / "nocol.parquet")
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a Parquet file"):
        read_corpus(tmp_path / "fake.parquet")


def test_plan_groups_similar_lengths_and_is_deterministic(tmp_path):
    corpus = read_corpus(write_txt(tmp_path / "c.txt"))
    shards = plan(corpus, 12, 4)
    assert [(s.start, s.end) for s in shards] == [(0, 12), (12, 24), (24, 36)]
    for s in shards:
        places = np.concatenate(s.batches)
        assert sorted(places.tolist()) == list(range(s.start, s.end))
        lengths = [len(corpus.texts[i]) for i in places]
        assert lengths == sorted(lengths)
    assert all(np.array_equal(a, b) for s, t in zip(shards, plan(corpus, 12, 4), strict=True)
               for a, b in zip(s.batches, t.batches, strict=True))


def test_part_roundtrip_and_results_files(tmp_path):
    rng = np.random.default_rng(1)
    s = _summary_of(rng.random((9, 2, 3, len(STAT_NAMES))), list(range(9)))
    s.skipped = [42]
    write_part(tmp_path / "p.parquet", s, {"start": 0, "end": 10})
    back, meta = read_part(tmp_path / "p.parquet")
    assert meta["start"] == 0 and back.skipped == [42] and back.count == 9
    for name in ("sum", "sumsq", "min", "max", "top_value", "top_id", "top_pos"):
        np.testing.assert_array_equal(getattr(back, name), getattr(s, name))
    write_results(tmp_path, back, lambda i: f"text {i}", {"model": "m"})
    heads, top = pq.read_table(tmp_path / "heads.parquet"), pq.read_table(tmp_path / "top.parquet")
    assert len(heads) == 2 * 3 * len(STAT_NAMES) and len(top) == 2 * 3 * len(STAT_NAMES) * 3
    assert top.column("text")[0].as_py() == f"text {top.column('id')[0].as_py()}"
    info = json.loads((tmp_path / "corpus.json").read_text())
    assert info["texts"] == 9 and info["skipped"] == 1 and info["model"] == "m"


def test_results_open_only_inside_the_root(tmp_path):
    root, outside = tmp_path / "corpus", tmp_path / "elsewhere"
    s = _summary_of(np.random.default_rng(2).random((4, 2, 3, len(STAT_NAMES))), list(range(4)))
    for folder in (root / "a", root / "deep" / "b", outside / "c"):
        folder.mkdir(parents=True)
        write_results(folder, s, str, {"model": "m"})
    (root / "link").symlink_to(outside / "c")  # a symlinked folder out of the root
    (root / "d").mkdir()
    for name in ("corpus.json", "heads.parquet"):
        (root / "d" / name).write_bytes((root / "a" / name).read_bytes())
    (root / "d" / "top.parquet").symlink_to(outside / "c" / "top.parquet")  # a symlinked file out of the root
    assert list_results(root) == ["a", "deep/b"]
    r = open_results(root, "deep/b")
    assert r.shape == (2, 3) and r.grid("cls").shape == (2, 3)
    assert [t["rank"] for t in r.top_texts(1, 2, "sink")] == [0, 1, 2]
    for bad in ("link", "d", "../elsewhere/c", str(outside / "c"), "a/..", ""):
        with pytest.raises(ValueError, match="choose one of the listed runs"):
            open_results(root, bad)
    assert list_results(tmp_path / "missing") == []


def test_results_rows_csv_and_histograms(tmp_path):
    """What the Corpus page shows and exports, from the numbers the summary was made of."""
    import csv
    import io

    rng = np.random.default_rng(3)
    values = rng.random((6, 2, 3, len(STAT_NAMES)))
    (tmp_path / "r").mkdir()
    write_results(tmp_path / "r", _summary_of(values, list(range(6))), lambda i: ["=1+1", "plain"][i % 2],
                  {"model": "m"})
    r = open_results(tmp_path, "r")
    rows = r.rows("std")
    assert [(x["layer"], x["head"]) for x in rows] == [(la, h) for la in range(2) for h in range(3)]
    np.testing.assert_allclose([x["self"] for x in rows], values[..., STAT_NAMES.index("self")].std(0).ravel(),
                               rtol=1e-12)
    edges, counts = r.histogram(1, 2, "entropy")
    assert len(edges) == len(counts) + 1 and counts.sum() == 6
    assert counts[np.searchsorted(edges, values[0, 1, 2, 0], side="right") - 1] >= 1
    table = list(csv.DictReader(io.StringIO(r.heads_csv())))
    assert len(table) == 2 * 3 * len(STAT_NAMES)
    one = next(x for x in table if (x["layer"], x["head"], x["stat"]) == ("1", "0", "sink"))
    assert float(one["max"]) == pytest.approx(values[:, 1, 0, STAT_NAMES.index("sink")].max(), rel=1e-8)
    top = list(csv.DictReader(io.StringIO(r.top_csv(0, 1, "cls"))))
    want = np.argsort(-values[:, 0, 1, STAT_NAMES.index("cls")], kind="stable")[:3]
    assert [int(x["id"]) for x in top] == want.tolist()
    assert {x["text"] for x in top} <= {"'=1+1", "plain"}  # a formula-like text is quoted
    with pytest.raises(ValueError, match="statistic must be one of"):
        r.grid("nope")
    with pytest.raises(ValueError, match="measure must be one of"):
        r.rows("median")


def test_damaged_results_do_not_open(tmp_path):
    s = _summary_of(np.random.default_rng(4).random((3, 2, 3, len(STAT_NAMES))), [0, 1, 2])
    for name in ("cut", "json", "columns"):
        (tmp_path / name).mkdir()
        write_results(tmp_path / name, s, str, {"model": "m"})
    data = (tmp_path / "cut" / "top.parquet").read_bytes()
    (tmp_path / "cut" / "top.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "json" / "corpus.json").write_text("[1, 2]")
    pq.write_table(pq.read_table(tmp_path / "columns" / "heads.parquet").drop(["mean"]),
                   tmp_path / "columns" / "heads.parquet")
    for name in ("cut", "json", "columns"):
        with pytest.raises(ValueError, match=f"The corpus results '{name}' cannot be read"):
            open_results(tmp_path, name)


def test_cli_usage_errors(tmp_path, capsys):
    (tmp_path / "c.csv").write_text("a\n")
    assert cli_main(["corpus", "--input", str(tmp_path / "c.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "must be a .txt, .jsonl, .parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["corpus", "--input", "x.txt", "--out", "o", "--batch", "0"])
    assert "must be at least 1" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    write_txt(tmp_path / "c.txt")
    assert cli_main(["corpus", "--input", str(tmp_path / "c.txt"), "--out", str(tmp_path / "notes")]) == 2
    assert "not a corpus run folder" in capsys.readouterr().err
    for model, message in (("dinov2-small", "need a text model"), ("nope", "Unknown model")):
        args = ["corpus", "--model", model, "--input", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o")]
        assert cli_main(args) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_the_pipeline_driver_hands_over_rows_then_the_error(monkeypatch):
    """The actor that drives Ray Data (here called directly, without Ray): rows as they come, then the pipeline's
    own error, after the rows it made."""
    import threading

    from attnviz.corpus import pipeline
    from attnviz.corpus.worker import PipelineDriver

    go = threading.Event()

    def rows(batches, job, workers):
        yield {"batch": 0}
        go.wait(5)
        yield {"batch": 1}
        raise ValueError("the model broke")

    monkeypatch.setattr(pipeline, "result_rows", rows)
    driver = PipelineDriver()
    driver.start([], None, 1)
    got, finished = driver.take(wait_s=5)
    assert got == [{"batch": 0}] and not finished
    go.set()
    seen = []
    with pytest.raises(ValueError, match="the model broke"):
        for _ in range(50):
            batch, finished = driver.take(wait_s=0.2)
            seen += batch
            assert not finished
    assert seen == [{"batch": 1}]
