"""attnviz.server: importing attnviz changes nothing in the process; :func:`attnviz.server.configure` applies each
setting, once, and each can be switched off (fresh interpreters: these are process-wide)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Records, in the child, what a process setting would touch: a C library's mallopt or malloc_trim looked up through
# ctypes, the environment, the GIL switch interval and Pillow's encoder block.
SPY = r"""
import ctypes, json, os, sys
import PIL.ImageFile
looked_up = []
class Spy(ctypes.CDLL):
    def __getattr__(self, name):
        if name in ("mallopt", "malloc_trim"):
            looked_up.append(name)
        return super().__getattr__(name)
ctypes.CDLL = Spy
env, interval, block = dict(os.environ), sys.getswitchinterval(), PIL.ImageFile.MAXBLOCK
def report(**extra):
    print(json.dumps({"env": {k: v for k, v in os.environ.items() if env.get(k) != v},
                      "interval_changed": sys.getswitchinterval() != interval,
                      "block_changed": PIL.ImageFile.MAXBLOCK != block, "looked_up": looked_up,
                      "server_imported": any(m.startswith("attnviz.server") for m in sys.modules), **extra}))
"""


def child(code: str, **env: str) -> dict:
    """Run ``code`` after :data:`SPY` in a fresh interpreter; its last line of output, as JSON."""
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY" and not k.startswith("ATTNVIZ_")}
    out = subprocess.run([sys.executable, "-c", SPY + code], cwd=ROOT, env={**clean, **env}, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_attnviz_and_every_library_module_changes_nothing():
    seen = child("""
import importlib, pathlib
import attnviz
root = pathlib.Path(attnviz.__file__).parent  # every module, found by file (pkgutil would import server and web)
names = sorted(".".join(("attnviz",) + p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
               for p in root.rglob("*.py") if p.relative_to(root).parts[0] not in ("server", "web", "__main__.py"))
for name in names:
    importlib.import_module(name)
report(modules=names, streamlit="streamlit" in sys.modules)
""")
    assert {"attnviz.models.dinov2", "attnviz.render.raster", "attnviz.export", "attnviz.cli"} <= set(seen["modules"])
    assert seen["env"] == {}  # no OMP_WAIT_POLICY or anything else
    assert not seen["interval_changed"] and not seen["block_changed"]
    assert seen["looked_up"] == []  # no mallopt, no malloc_trim
    assert not seen["server_imported"] and not seen["streamlit"]


def test_configure_applies_every_setting_once():
    seen = child("""
from attnviz import server
first = server.configure()
import torch  # after the policy is set, as app.py does
report(first=first, again=server.configure())
""")
    on = {"malloc": sys.platform.startswith("linux"), "gil": True}
    assert seen["first"] == seen["again"] == on
    assert seen["env"] == {}
    assert seen["interval_changed"] and seen["block_changed"]
    assert "mallopt" in seen["looked_up"]


@pytest.mark.parametrize("how", ["environment", "arguments"])
def test_each_setting_can_be_switched_off(how):
    if how == "environment":
        seen = child("from attnviz import server\nreport(applied=server.configure())",
                     ATTNVIZ_MALLOC="off", ATTNVIZ_GIL="false")
    else:
        seen = child("from attnviz import server\nreport(applied=server.configure(malloc=False, gil=False))",
                     ATTNVIZ_GIL="1")  # an argument wins over the variable
    assert seen["applied"] == {"malloc": False, "gil": False}
    assert seen["env"] == {} and not seen["interval_changed"] and not seen["block_changed"]
    assert seen["looked_up"] == []
    only_gil = child("from attnviz import server\nreport(applied=server.configure(malloc=False))")
    assert only_gil["applied"] == {"malloc": False, "gil": True} and only_gil["interval_changed"]
