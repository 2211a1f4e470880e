"""The house stays readable (issue 10, DESIGN §12): no module in core/ or ui/ over ~600 lines.

The limit checked is 650 lines, a margin over the ~600 of the design.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ui")
LIMIT = 650

def module_lines() -> dict[str, int]:
    """Lines of every .py module under core/ and ui/, by path relative to the repository."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            out[path.relative_to(ROOT).as_posix()] = len(path.read_text(encoding="utf-8").splitlines())
    return out


def test_the_walk_finds_the_packages_modules():
    lines = module_lines()
    assert {"core/research/offline.py", "core/supervisor.py", "ui/monitor/__init__.py"} <= set(lines)
    assert all(n > 0 for path, n in lines.items() if not path.endswith("__init__.py"))


def test_no_module_is_over_the_limit():
    over = {path: n for path, n in module_lines().items() if n > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split them by concept): {over}"
