"""The house stays readable (issue 10, DESIGN §12): no module in core/ or ui/ over ~600 lines.

The limit checked is 650 lines, a margin over the ~600 of the design. Modules that other branches of
issue 10 are still splitting are listed in BEING_SPLIT: they are checked by their own test, marked
xfail until those branches are merged; then the list (and the mark) can go.
"""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ui")
LIMIT = 650

BEING_SPLIT = frozenset({
    "core/report.py",
    "core/supervisor.py",
    "core/research/web_search.py",
    "core/corpus/importers.py",
    "core/corpus/demo.py",
    "core/llm/client.py",
    "core/discussion/host.py",
})


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
    over = {path: n for path, n in module_lines().items() if n > LIMIT and path not in BEING_SPLIT}
    assert not over, f"modules over {LIMIT} lines (split them by concept): {over}"


@pytest.mark.xfail(strict=False, reason="other issue-10 branches split these modules; remove the mark and "
                                        "BEING_SPLIT once they are merged")
def test_modules_being_split_are_under_the_limit():
    lines = module_lines()
    over = {path: lines[path] for path in sorted(BEING_SPLIT) if lines.get(path, 0) > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split them by concept): {over}"
