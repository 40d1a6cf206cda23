"""attnviz.server.omp: the server asks OpenMP for passive waiting before torch loads it, in a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGURE = "from attnviz import server; server.configure(malloc=False, gil=False)"


def policy_after(code: str, preset: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY" and not k.startswith("ATTNVIZ_")}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", code + "\nimport os; print(os.environ.get('OMP_WAIT_POLICY'))"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("code", "preset", "expected"), [
    (CONFIGURE, None, "PASSIVE"),                   # set before torch loads
    (CONFIGURE, "ACTIVE", "ACTIVE"),                # a policy someone chose is kept
    ("import torch\n" + CONFIGURE, None, "None"),   # too late: libgomp has read its settings
    ("import attnviz", None, "None"),               # the library alone sets nothing
])
def test_passive_wait_is_set_only_by_configure_before_torch(code, preset, expected):
    assert policy_after(code, preset) == expected
