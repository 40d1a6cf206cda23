"""Damaging real files for fault tests."""
from __future__ import annotations

from pathlib import Path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
