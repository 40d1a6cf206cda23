"""The command line writes the same numbers as the API."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import attnviz

TEXT = "Exports from the command line match the API."
CAT = str(Path(__file__).resolve().parents[1] / "assets" / "examples" / "cat.jpg")


def test_cli_export_matches_api(tmp_path, minilm):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "attnviz", "export", "--model", "minilm", "--text", TEXT,
                           "--out", str(out), "--csv", "2,5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    w = np.load(out / "weights.npy", allow_pickle=False)
    r = minilm.run(text=TEXT)
    np.testing.assert_allclose(w, r.weights, atol=1e-6)
    meta = json.loads((out / "tokens.json").read_text())
    assert meta["tokens"] == r.tokens and meta["shape"]["layer"] == 6
    heads = sorted(out.glob("layer*_head*.png"))
    assert len(heads) == 72
    assert Image.open(out / "layer0_head0.png").format == "PNG"
    assert Image.open(out / "grid.png").width > 12 * 64
    rows = (out / "layer2_head5.csv").read_text().strip().splitlines()
    assert len(rows) == len(r.tokens) + 1
    first = [float(v) for v in rows[1].split(",")[1:]]
    np.testing.assert_allclose(first, r.weights[2, 5, 0], atol=1e-5)


def test_cli_bad_text_gives_message_not_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "attnviz", "export", "--text", "   ", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "empty" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_unwritable_out_and_unknown_head_give_messages_and_write_nothing(tmp_path):
    """--out naming a file: a one-line message, exit 1. --csv naming a head the model lacks: exit 2, and nothing
    written (the heads are checked before any file)."""
    from attnviz.cli import main

    existing = tmp_path / "a-file"
    existing.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "attnviz", "export", "--text", "hi", "--out", str(existing)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "File exists" in proc.stderr and str(existing) in proc.stderr
    out = tmp_path / "out"
    assert main(["export", "--text", "hi", "--out", str(out), "--csv", "99,0"]) == 2
    assert not out.exists()


def test_export_of_an_encoder_decoder_writes_its_cross_attention(tmp_path):
    """date-seq2seq: the encoder's self-attention at the top, cross and decoder attention in their own folders."""
    from attnviz.cli import main

    assert main(["export", "--model", "date-seq2seq", "--text", "21 Nov 2026", "--out", str(tmp_path)]) == 0
    r = attnviz.load_model("date-seq2seq").run(text="21 Nov 2026")
    for folder, part in (("", r), ("cross", r.parts["cross"]), ("decoder", r.parts["decoder"])):
        np.testing.assert_array_equal(np.load(tmp_path / folder / "weights.npy"), part.weights)
        assert (tmp_path / folder / "grid.png").is_file() and (tmp_path / folder / "layer0_head0.png").is_file()
    assert json.loads((tmp_path / "cross" / "tokens.json").read_text())["key_tokens"] == r.parts["cross"].key_tokens


@pytest.mark.parametrize(("flags", "message"), [
    (["--image", CAT, "--text-pair", "b"], "use it with --text, not with --image"),
    (["--model", "date-seq2seq", "--text", "21 Nov 2026", "--text-pair", "b"],
     "--text-pair needs a text model; date-seq2seq is a seq2seq model that reads one text"),
    (["--model", "smollm2-135m", "--text", "hi", "--text-pair", "b"],
     "--text-pair needs an encoder; smollm2-135m is a causal model that reads one text"),
    (["--model", "shapes-vit", "--text", "hi"], "shapes-vit reads images, not text: give it --image instead"),
    (["--model", "minilm", "--image", CAT], "minilm reads text, not images: give it --text instead of --image"),
])
def test_cli_flags_the_model_would_ignore_are_usage_errors(tmp_path, capsys, flags, message):
    """Exit 2 with argparse's usage line and the reason, and nothing written."""
    from attnviz.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["export", *flags, "--out", str(out)])
    err = capsys.readouterr().err
    usage = any(line.startswith("usage: attnviz export") for line in err.splitlines())  # after any load progress
    assert e.value.code == 2 and usage and message in err, err
    assert not out.exists()


def test_export_of_a_long_input_writes_what_fits_and_says_what_it_skipped(tmp_path, capsys, monkeypatch, minilm):
    """Past the bound of result.weights there is no weights.npy, and past HEAD_PNG_MAX_TOKENS no per-head PNGs;
    each is named on stderr with the reason and what to use instead; the grid, tokens and asked-for CSV are
    written (bounds lowered here so that a short text crosses them, as SmolLM2 at 4,096 tokens does)."""
    from attnviz import export
    from attnviz.cli import main

    monkeypatch.setattr(export, "WEIGHTS_MAX_BYTES", 1000)
    monkeypatch.setattr(export, "HEAD_PNG_MAX_TOKENS", 4)
    out = tmp_path / "out"
    assert main(["export", "--text", TEXT, "--out", str(out), "--csv", "1,2"]) == 0
    err = capsys.readouterr().err
    assert "skipped weights.npy" in err and "--csv LAYER,HEAD" in err and "skipped the 72 per-head PNGs" in err
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "layer1_head2.csv", "tokens.json"]
    r = minilm.run(text=TEXT)
    rows = (out / "layer1_head2.csv").read_text().strip().splitlines()
    np.testing.assert_allclose([float(v) for v in rows[-1].split(",")[1:]], r.head(1, 2)[-1], atol=1e-5)


def test_cli_image_size(tmp_path, capsys):
    from attnviz.cli import main

    out = tmp_path / "out"
    assert main(["export", "--image", CAT, "--image-size", "308", "--out", str(out)]) == 0
    meta = json.loads((out / "tokens.json").read_text())
    assert meta["grid"] == [22, 22] and meta["shape"]["query"] == 1 + 22 * 22
    assert main(["export", "--image", CAT, "--image-size", "300", "--out", str(tmp_path / "bad")]) == 2
    assert "in steps of its 14 px patch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["export", "--text", "hi", "--image-size", "448", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "use it with --image" in capsys.readouterr().err
