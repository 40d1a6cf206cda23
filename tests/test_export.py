"""attnviz.export: one table of formats (FORMATS) whose writers make files that read back as what went in, and the
download strips of the pages driven by it."""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from attnviz.export import FORMATS, file_name, head_rows_csv, matrix_csv, png_file, records_csv, weights_npy

TOKENS = ["[CLS]", "=cmd", "cat", "[SEP]"]


def test_every_format_has_a_label_mime_type_and_suffix():
    assert set(FORMATS) == {"png", "svg", "csv", "json", "npy"}
    for name, fmt in FORMATS.items():
        assert fmt.label == name.upper() and fmt.suffix == f".{name}" and "/" in fmt.mime
    assert file_name("minilm_abc_grid", "png") == "minilm_abc_grid.png"


def test_each_writer_makes_a_file_that_reads_back():
    w = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    assert np.array_equal(np.load(io.BytesIO(FORMATS["npy"].write(w)), allow_pickle=False), w)
    picture = Image.new("RGB", (7, 5), (10, 200, 30))
    png = FORMATS["png"].write(picture)
    assert Image.open(io.BytesIO(png)).size == (7, 5)
    assert FORMATS["png"].write(png) == png == png_file(png)  # PNG bytes (a cached grid) pass through
    rows = list(csv.reader(io.StringIO(FORMATS["csv"].write(matrix_csv(w[0, 0], TOKENS, TOKENS)).decode("utf-8"))))
    assert len(rows) == 5 and rows[2][0] == "1:=cmd" and rows[0][1] == "0:[CLS]"
    np.testing.assert_allclose([float(v) for v in rows[1][1:]], w[0, 0, 0], rtol=1e-5)
    assert json.loads(FORMATS["json"].write(json.dumps({"tokens": TOKENS}, ensure_ascii=False))) == {"tokens": TOKENS}
    assert ET.fromstring(FORMATS["svg"].write('<svg xmlns="http://www.w3.org/2000/svg"/>')).tag.endswith("svg")
    assert FORMATS["npy"].write(w) == weights_npy(w)


def _strip() -> None:
    import numpy as np

    from attnviz.web.widgets import Download, download_strip

    download_strip([Download("Focused head", "png", "run_layer0_head0", lambda: Image.new("RGB", (3, 3))),
                    Download("Weights", "npy", "run_weights", lambda: np.zeros(2), help="float32")], key="dl_test")


def test_a_download_strip_names_each_button_by_its_format():
    at = AppTest.from_function(_strip).run()
    assert not at.exception
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == ["Focused head (PNG)", "Weights (NPY)"]
    assert buttons[1].proto.help == "float32"


@pytest.mark.parametrize("fmt", ["xlsx", "PNG"])
def test_an_unknown_format_is_refused_when_the_strip_is_made(fmt):
    from attnviz.web.widgets import Download, download_strip

    with pytest.raises(KeyError):
        download_strip([Download("x", fmt, "x", lambda: b"")], key="dl_x")


def test_records_and_head_rows_csv_read_back():
    records = [{"method": "=rollout", "step": 0, "probability": 0.123456789}, {"method": "alti", "step": 1,
                                                                                "probability": 1.0}]
    rows = list(csv.reader(io.StringIO(records_csv(records))))
    assert rows == [["method", "step", "probability"], ["'=rollout", "0", "0.123457"], ["alti", "1", "1"]]
    assert records_csv([]) == ""
    attention = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 10  # [layer, head, key]
    rows = list(csv.reader(io.StringIO(head_rows_csv(attention, ["a", "b", "+c", "d"]))))
    assert rows[0] == ["layer", "head", "0:a", "1:b", "2:+c", "3:d"] and len(rows) == 1 + 6
    assert rows[5][:2] == ["1", "1"] and [float(v) for v in rows[5][2:]] == pytest.approx(attention[1, 1])
