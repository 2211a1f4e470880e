"""Shared helpers for the bench/ scripts: isolation, machine facts, statistics, BENCHMARKS.md.

Every script calls `isolate()` BEFORE importing anything from core: data, logs and .env go to a
fresh temporary folder (never the project's data/ or logs/), and Shoal settings that happen to be
in the caller's environment (API keys, DATABASE_URL, …) are removed, so a figure never depends on
a developer's configuration.

Figures are noisy on a shared 2-core machine, so scripts compare A and B in the same process,
interleaved or back to back, repeat, and report medians; the load average is printed at the start
and the end of every script and recorded with its figures.
"""
from __future__ import annotations

import argparse
import atexit
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

INTRO = """# Benchmarks

Performance targets are measured by the scripts in `bench/` and recorded here; the tests check
behaviour, never wall-clock speed. Each section below says what is measured, the exact command,
the date, the machine (CPUs, load average at the start and end of the script), the figures and
the ratio that matters.

The machines these run on are shared and noisy (2 cores, other test suites running beside), so
absolute times wander from run to run. **Only ratios measured within one run are compared**: A
and B run interleaved or back to back in the same process, a few times, and the median is
reported. Every script works in a temporary folder (its own SQLite file, logs and `.env`), never
in the project's `data/` or `logs/`, and ignores Shoal settings in the caller's environment.

Reproduce everything (4–7 minutes, depending on the load) and rewrite this file:

    python bench/run_all.py --write

or one section: `python bench/<script>.py --write` (without `--write` a script only prints).
"""

_SHOAL_PREFIXES = ("SHOAL_", "QUERY_ENGINE_", "MEDIA_ENGINE_", "INSIGHT_ENGINE_", "REPORT_ENGINE_", "FORUM_HOST_",
                   "KEYWORD_OPTIMIZER_", "TAVILY_", "BOCHA_")


def isolate(prefix: str) -> Path:
    """A fresh temporary folder for data, logs and .env; Shoal settings removed from os.environ.

    Call before importing core. The folder is removed at exit (set SHOAL_BENCH_KEEP=1 to keep it)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"shoal-bench-{prefix}-"))
    keep = os.environ.get("SHOAL_BENCH_KEEP") == "1"
    for key in list(os.environ):
        if key.startswith(_SHOAL_PREFIXES) or key in ("DATABASE_URL",) or key.endswith("_WEB_SEARCH_API_KEY"):
            if key != "SHOAL_BENCH_KEEP":
                del os.environ[key]
    os.environ["SHOAL_DATA_DIR"] = str(tmp / "data")
    os.environ["SHOAL_LOG_DIR"] = str(tmp / "logs")
    os.environ["SHOAL_ENV_FILE"] = str(tmp / ".env")  # does not exist: defaults only
    (tmp / "data").mkdir()
    (tmp / "logs").mkdir()
    if not keep:
        atexit.register(shutil.rmtree, tmp, True)
    return tmp


def clean_env(tmp: Path) -> dict[str, str]:
    """An environment for a subprocess with the same isolation as `isolate`."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(_SHOAL_PREFIXES) or k == "DATABASE_URL" or k.endswith("_WEB_SEARCH_API_KEY"))}
    env.update(SHOAL_DATA_DIR=str(tmp / "data"), SHOAL_LOG_DIR=str(tmp / "logs"), SHOAL_ENV_FILE=str(tmp / ".env"),
               PYTHONPATH=str(ROOT))
    return env


# -- machine facts -------------------------------------------------------------------------------

def loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else (platform.processor() or "unknown")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Machine:
    """Facts recorded with every section: CPUs, load average at start and end, versions."""

    def __init__(self):
        self.started = datetime.now(timezone.utc).astimezone()
        self.load_start = loadavg()
        self.load_end = ""
        try:
            self.nproc = len(os.sched_getaffinity(0))
        except AttributeError:
            self.nproc = os.cpu_count() or 0
        self.cpu = _cpu_model()
        self.python = platform.python_version()
        self.commit = _commit()
        print(f"# {self.started:%Y-%m-%d %H:%M %Z}  nproc={self.nproc}  load average (1/5/15 min) at start: "
              f"{self.load_start}", flush=True)

    def end(self) -> None:
        self.load_end = loadavg()
        print(f"# load average at end: {self.load_end}", flush=True)

    def markdown(self) -> str:
        return (f"- Date: {self.started:%Y-%m-%d %H:%M %Z}; code at commit `{self.commit}` (plus the working tree)\n"
                f"- Machine: nproc {self.nproc} ({self.cpu}), Python {self.python}, {platform.system()} "
                f"{platform.release()}\n"
                f"- Load average (1/5/15 min): {self.load_start} at start, {self.load_end or loadavg()} at end\n")


# -- statistics ----------------------------------------------------------------------------------

def median(xs) -> float:
    xs = list(xs)
    return statistics.median(xs) if xs else float("nan")


def percentile(xs, p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


# -- BENCHMARKS.md -------------------------------------------------------------------------------

ORDER = ["engine_parallel", "event_cursor", "log_tail", "offline_run", "telemetry_burst", "analysis_quality",
         "sentiment", "poll_refresh", "write_bytes", "cold_start", "critical_path"]


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def write_section(name: str, body: str) -> None:
    """Replace this script's section of BENCHMARKS.md (or add it, in ORDER), keeping the others."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else INTRO
    start, end = _markers(name)
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        # insert before the first section that comes later in ORDER, else at the end
        later = [n for n in ORDER[ORDER.index(name) + 1:]] if name in ORDER else []
        pos = min((text.index(_markers(n)[0]) for n in later if _markers(n)[0] in text), default=None)
        if pos is None:
            text = text.rstrip() + "\n\n" + block + "\n"
        else:
            text = text[:pos] + block + "\n\n" + text[pos:]
    BENCHMARKS.write_text(text, encoding="utf-8")
    print(f"# wrote section '{name}' of {BENCHMARKS.relative_to(ROOT)}", flush=True)


def write_intro() -> None:
    """(Re)write the introduction at the top of BENCHMARKS.md, keeping every section."""
    text = BENCHMARKS.read_text(encoding="utf-8") if BENCHMARKS.exists() else ""
    first = text.find("<!-- bench:")
    sections = text[first:] if first >= 0 else ""
    BENCHMARKS.write_text(INTRO + ("\n" + sections if sections else ""), encoding="utf-8")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--write", action="store_true", help="update this script's section of BENCHMARKS.md")
    return p


def command_line() -> str:
    """How this script was invoked, relative to the project root (for the 'command' line)."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_s = str(script.relative_to(ROOT))
    except ValueError:
        script_s = str(script)
    return " ".join(["python", script_s, *sys.argv[1:]])


def command_md() -> str:
    """The command as Markdown, with the run_all invocation that started it, if any."""
    via = os.environ.get("BENCH_VIA")
    return f"`{command_line()}`" + (f" (run by `{via}`)" if via else "")
