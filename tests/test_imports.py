"""The import rules that keep attnviz easy to change: streamlit only in app.py, pages/, attnviz/web/ and
attnviz/server/; render and analysis never import torch, streamlit or the mechanisms lab; models never import
streamlit or plotly."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_render_imports_no_torch_or_streamlit():
    code = ("import sys, attnviz.render, attnviz.analysis, attnviz.export; "
            "bad = [m for m in ('torch', 'streamlit') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def imports_of(path: Path) -> set[str]:
    """The modules a Python file imports (any ``import`` or ``from`` statement, wherever it is)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def uses(path: Path, package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in imports_of(path))


def test_import_rules_hold_in_every_file():
    """streamlit only in app.py, pages/, attnviz/web/ and attnviz/server/; render and analysis never import torch,
    streamlit or the mechanisms lab; models never import streamlit or plotly."""
    files = [ROOT / "app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("attnviz/**/*.py")]
    assert len(files) > 50

    def where(p: Path) -> str:
        return p.relative_to(ROOT).as_posix()

    streamlit_ok = ("app.py", "pages/", "attnviz/web/", "attnviz/server/")
    assert [where(p) for p in files if uses(p, "streamlit") and not where(p).startswith(streamlit_ok)] == []
    for layer in ("attnviz/render/", "attnviz/analysis/"):
        for package in ("torch", "streamlit", "attnviz.mechanisms", "attnviz.web", "attnviz.models"):
            assert [where(p) for p in files if where(p).startswith(layer) and uses(p, package)] == [], package
    for package in ("streamlit", "plotly", "attnviz.web"):
        assert [where(p) for p in files if where(p).startswith("attnviz/models/") and uses(p, package)] == [], package
