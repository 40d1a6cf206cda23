"""What the local models folder costs: listing it (done on every run of a page with a model picker) and loading
a directory model (its checks included).

Builds ``--folders`` tiny BERT folders (tests/hf_dirs.py; each has a config, safetensors weights and 4 tokenizer
files) in a temporary models folder, then prints the median time of ``attnviz.list_models()`` over ``--reps`` calls
(every call scans the folder: names, config.json, links of every file), and of a first load of one folder by
name (file checks, tokenizer, weights, one check run). Asserts nothing.

Usage::

    .venv/bin/python bench/local_models.py
    .venv/bin/python bench/local_models.py --folders 50 --reps 50
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", type=int, default=10, help="model folders in the models folder")
    parser.add_argument("--reps", type=int, default=20, help="listings timed")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.hf_dirs import TEXT, build_text

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "models"
        first = build_text(TEXT["bert"], root / "model-000")
        for i in range(1, args.folders):
            shutil.copytree(first, root / f"model-{i:03d}")
        os.environ["ATTNVIZ_MODELS_DIR"] = str(root)
        import attnviz

        attnviz.list_models()  # imports
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            names = attnviz.list_models("text")
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        attnviz.load_model("model-001", allow_paths=False)
        load = time.perf_counter() - start
    print(f"list_models with {args.folders} local folders ({len(names)} text models): "
          f"median {statistics.median(times) * 1e3:.2f} ms over {args.reps} calls")
    print(f"first load of a tiny local BERT folder by name: {load:.2f} s")


if __name__ == "__main__":
    main()
