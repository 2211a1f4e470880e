"""Cold start: `streamlit run Home.py` to Home rendered in Chromium, beside a bare Streamlit app's floor.

Also the import cost behind it.

For each code tree (this working tree, and with `--baseline REV` that commit exported by
`git archive` into a temporary folder, so A and B are measured in one run) and each of two data
folders (SQLite): "first start" (empty) and "with history" (a 300-post demo corpus and one finished
offline run, made with `python -m core data demo` and `python -m core run … --offline`, so Home has
a current run, events and a recent-runs table to show). Beside them, the floor: a bare Streamlit app
(a temporary folder holding a Home.py with `st.title("🐟 Shoal")` only, and a copy of this tree's
.streamlit/config.toml), started and opened the same way: what Streamlit itself and the browser cost
on this machine before any of Shoal's code runs.

 1. One priming start per case, reported apart: it creates the database, writes the bytecode caches
    and warms the file cache. (This sandbox sets PYTHONDONTWRITEBYTECODE=1; the servers run without
    it, as on a user's machine, where `__pycache__` is written once.)
 2. `--repeats` measured starts, the trees interleaved (A B floor, floor B A, …): `python -m streamlit run
    Home.py` headless on a free loopback port (as tests/support/streamlit_server.py starts it), the
    health endpoint polled every 25 ms; as soon as it answers, a fresh context of an already running
    headless Chromium (/usr/bin/chromium through Playwright) opens the page. Timed from the server's
    `Popen`: server answering, the page's websocket connected, the Home title (`h1` "Shoal") in the
    page, and the first script run finished (`data-test-script-state="notRunning"`, what tests/support
    waits on; no settle time).
 3. `python -X importtime` of the imports at the top of the tree's Home.py (streamlit, core, ui),
    3 times each: the total and the big third-party packages among them, and of `import core.runtime`.

    python bench/cold_start.py [--repeats 3] [--baseline 75c90a3 | --baseline none] [--write]

Prints one JSON line at the end. The goal of issue 11 is ≤ 3 s from server start to Home rendered;
when the bare app alone needs more, the headline says so, with both figures and Shoal's part above it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (ROOT, Machine, clean_env, command_md, isolate, median, parser, table,  # noqa: E402
                     write_section)

GOAL_S = 3.0
DEFAULT_BASELINE = "75c90a3"  # the branch point before issue 11's warm-up and lazy imports
HEAVY = ("openai", "pandas", "pyarrow", "numpy", "jieba", "sqlalchemy", "streamlit", "altair", "httpx", "pydantic")
_APP = '[data-testid="stApp"]'


# -- trees -----------------------------------------------------------------------------------------

def export_tree(rev: str, into: Path) -> Path:
    """`git archive REV` unpacked into `into` (only committed files: no data/, logs/)."""
    into.mkdir(parents=True)
    archive = into.parent / f"{into.name}.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), rev], cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


def rev_name(rev: str) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, timeout=10)
    return out.stdout.strip() or rev


# -- one start -------------------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(tree: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(tree / "Home.py"), "--server.headless", "true",
            "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false"]


def server_env(tree: Path, data: Path) -> dict[str, str]:
    env = clean_env(data)  # data/, logs/ and .env under `data`; Shoal settings of the caller removed
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(tree), PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    return env


def one_start(browser, tree: Path, data: Path, timeout: float = 120.0) -> dict:
    """Seconds from Popen to: server answering, Home's title shown, first script run finished."""
    port = free_port()
    log = open(data / "streamlit.log", "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(server_command(tree, port), cwd=tree, env=server_env(tree, data), stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    context = None
    try:
        deadline = t0 + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}: {tail(data / 'streamlit.log')}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"streamlit did not answer in {timeout} s: {tail(data / 'streamlit.log')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.025)
        listening = time.perf_counter() - t0
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/", wait_until="commit", timeout=timeout * 1000)
        page.wait_for_selector(f'{_APP}[data-test-connection-state="CONNECTED"]', state="attached",
                               timeout=timeout * 1000)
        connected = time.perf_counter() - t0
        page.wait_for_selector('h1:has-text("Shoal")', state="visible", timeout=timeout * 1000)
        title = time.perf_counter() - t0
        page.wait_for_selector(f'{_APP}[data-test-script-state="notRunning"]', state="attached",
                               timeout=timeout * 1000)
        done = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid)
        errors = page.locator('[data-testid="stException"]').count()
        if errors:
            raise RuntimeError(f"Home rendered {errors} exception(s): {tail(data / 'streamlit.log')}")
        return {"listening": listening, "connected": connected, "title": title, "rendered": done,
                "preload": preload_seconds(data), "cpu": cpu}
    finally:
        if context is not None:
            context.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds the process has used so far, all its threads (Linux /proc; None elsewhere): what
    Shoal's own work costs, apart from the browser's. It moves less than the wall-clock figures but does
    move: the same code used 1.5-1.7 s in some runs and 2.0-2.2 s in others on 2026-12-04."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def preload_seconds(data: Path) -> float | None:
    """How long this start's preload took (ui/preload.py logs it in the app's log), if the tree has one."""
    try:
        text = (data / "logs" / "app.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.findall(r"preload: \d+ modules imported.* in ([\d.]+) s", text)
    return float(found[-1]) if found else None


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return "(no log)"


def seed_history(tree: Path, data: Path) -> None:
    """A small demo corpus and one finished offline run in this data folder."""
    env = server_env(tree, data)
    for args in (["data", "demo", "--posts", "300"],
                 ["run", "新能源汽车价格战", "--offline", "--paragraphs", "1", "--reflections", "0", "--json"]):
        proc = subprocess.run([sys.executable, "-m", "core", *args], cwd=tree, env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"python -m core {' '.join(args)} failed in {tree}: {proc.stderr[-2000:]}")


# -- import time -----------------------------------------------------------------------------------

def home_imports(tree: Path) -> str:
    """The import statements at the top level of the tree's Home.py and of its Home page
    (pages/0_Start.py, where the tree has one), as one Python snippet."""
    files = [tree / "Home.py"] + [p for p in (tree / "pages" / "0_Start.py",) if p.is_file()]
    mods = [ast.parse(f.read_text(encoding="utf-8")) for f in files]
    return "\n".join(ast.unparse(n) for mod in mods for n in mod.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def importtime(tree: Path, code: str, env: dict) -> dict:
    """Total µs of the top-level imports, and the cumulative µs of the HEAVY packages, for one run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"import failed in {tree}: {proc.stderr[-2000:]}")
    total, heavy = 0, {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        cumulative, depth, name = int(m.group(2)), len(m.group(3)) // 2, m.group(4)
        if depth == 0:
            total += cumulative
        if name in HEAVY:
            heavy[name] = cumulative
    return {"total": total, **heavy}


def import_figures(tree: Path, env: dict, repeats: int = 3) -> dict[str, dict]:
    out = {}
    for label, code in (("Home's imports", home_imports(tree)), ("import core.runtime", "import core.runtime")):
        runs = [importtime(tree, code, env) for _ in range(repeats)]
        keys = sorted({k for r in runs for k in r})
        out[label] = {k: median(r.get(k, 0) for r in runs) / 1e6 for k in keys}
    return out


# -- the floor ------------------------------------------------------------------------------------

FLOOR = "bare Streamlit"
BARE_APP = 'import streamlit as st\n\nst.title("🐟 Shoal")\n'  # the title the browser procedure waits for


def bare_tree(into: Path) -> Path:
    """A folder holding a Streamlit app that shows a title and nothing else, with this tree's
    .streamlit/config.toml: what Streamlit and the browser cost here before any code of Shoal's runs."""
    into.mkdir(parents=True)
    (into / "Home.py").write_text(BARE_APP, encoding="utf-8")
    config = ROOT / ".streamlit" / "config.toml"
    if config.is_file():
        (into / ".streamlit").mkdir()
        shutil.copy(config, into / ".streamlit" / "config.toml")
    return into


# -- main ------------------------------------------------------------------------------------------

SCENARIOS = ("first start", "with history")
KEYS = ("listening", "connected", "title", "rendered")


def measured(label: str, scenario: str) -> bool:
    """The bare app has no data to show: it is measured once, beside the first start."""
    return label != FLOOR or scenario == SCENARIOS[0]


def where_the_time_goes(summary: dict, scenarios) -> str:
    mine = [summary[("this tree", sc)] for sc in scenarios]
    floor = summary[(FLOOR, SCENARIOS[0])]
    browser = median(m["connected"] - m["listening"] for m in mine)
    script = median(m["rendered"] - m["connected"] for m in mine)
    after_title = median(m["rendered"] - m["title"] for m in mine)
    took = [m["preload"] for m in mine if m.get("preload") is not None]
    preload = (f" The preload itself took {median(took):.2f} s (median), counted from the app's lifespan, just "
               "before the server answers; the first script run waits for it when it has not finished.") if took else ""
    cpu = [m["cpu"] for m in mine if m.get("cpu") is not None]
    if cpu and floor.get("cpu") is not None:
        preload += (f" By then the server process had used {median(cpu):.2f} s of CPU (median; bare Streamlit: "
                    f"{floor['cpu']:.2f} s).")
    return ("\nWhere this tree's time goes (medians over the data folders): the server answers after "
            f"{median(m['listening'] for m in mine):.2f} s (bare Streamlit: {floor['listening']:.2f} s); the "
            f"page's websocket connects {browser:.2f} s later (bare: {floor['connected'] - floor['listening']:.2f} s: "
            "Chromium loading and starting Streamlit's frontend, while Home.py's `st.App` lifespan imports the first "
            "page's modules and builds the runtime, ui/preload.py); the first script run then takes "
            f"{script:.2f} s (bare: {floor['rendered'] - floor['connected']:.2f} s), {after_title:.2f} s of it "
            "after the title." + preload + "\n")


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default=DEFAULT_BASELINE,
                    help="a git revision measured beside this tree ('none': this tree only)")
    args = ap.parse_args()
    tmp = isolate("cold")
    from playwright.sync_api import sync_playwright

    from tests.support.streamlit_server import launch_chromium

    trees: dict[str, Path] = {"this tree": ROOT}
    if args.baseline.lower() != "none":
        trees[f"baseline `{rev_name(args.baseline)}`"] = export_tree(args.baseline, tmp / "baseline")
    trees[FLOOR] = bare_tree(tmp / "bare")
    machine = Machine()
    labels = list(trees)
    shoal = [label for label in labels if label != FLOOR]
    cases = [(label, sc) for sc in SCENARIOS for label in labels if measured(label, sc)]
    data = {}
    for i, case in enumerate(cases):
        data[case] = tmp / f"case{i}"
        for sub in ("data", "logs"):
            (data[case] / sub).mkdir(parents=True, exist_ok=True)
        if case[1] == "with history":
            seed_history(trees[case[0]], data[case])
    primes, starts = {}, {case: [] for case in cases}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for case in cases:
                primes[case] = one_start(browser, trees[case[0]], data[case])
                print(f"priming start, {case[0]}, {case[1]}: rendered in {primes[case]['rendered']:.2f} s", flush=True)
            for i in range(args.repeats):
                for sc in SCENARIOS:
                    for label in (labels if i % 2 == 0 else labels[::-1]):
                        if not measured(label, sc):
                            continue
                        r = one_start(browser, trees[label], data[(label, sc)])
                        starts[(label, sc)].append(r)
                        print(f"  {i + 1}. {label}, {sc}: server answering {r['listening']:.2f} s, page connected "
                              f"{r['connected']:.2f} s, title "
                              f"{r['title']:.2f} s, rendered {r['rendered']:.2f} s, server CPU "
                              f"{r['cpu'] if r['cpu'] is not None else float('nan'):.2f} s", flush=True)
        finally:
            browser.close()
    imports = {label: import_figures(trees[label], server_env(trees[label], data[(label, SCENARIOS[0])]))
               for label in shoal}
    machine.end()

    summary = {case: {k: round(median(r[k] for r in starts[case]), 3) for k in KEYS} for case in cases}
    for case in cases:  # the preload's own duration, where the tree has one (this tree: ui/preload.py)
        took = [r["preload"] for r in starts[case] if r.get("preload") is not None]
        summary[case]["preload"] = round(median(took), 3) if took else None
        used = [r["cpu"] for r in starts[case] if r.get("cpu") is not None]
        summary[case]["cpu"] = round(median(used), 3) if used else None
    floor = summary[(FLOOR, SCENARIOS[0])]
    headline = max(summary[("this tree", sc)]["rendered"] for sc in SCENARIOS)
    above = round(headline - floor["rendered"], 3)
    rows = []
    for case in cases:
        s = summary[case]
        rows.append([case[0], case[1] if case[0] != FLOOR else "— (`st.title` only)", f"{s['listening']:.2f}",
                     f"{s['connected']:.2f}", f"{s['title']:.2f}", f"**{s['rendered']:.2f}**",
                     " / ".join(f"{r['rendered']:.2f}" for r in starts[case]), f"{primes[case]['rendered']:.2f}",
                     "—" if s["cpu"] is None else f"{s['cpu']:.2f}"])
    for label in shoal:  # Shoal's part: each figure minus the bare app's
        for sc in SCENARIOS:
            s = summary[(label, sc)]
            rows.append([f"{label} above the floor", sc] + [f"{s[k] - floor[k]:+.2f}" for k in KEYS[:3]]
                        + [f"**{s['rendered'] - floor['rendered']:+.2f}**", "", "",
                           "" if s["cpu"] is None or floor["cpu"] is None else f"{s['cpu'] - floor['cpu']:+.2f}"])
    headers = ["code", "data", "server answering (s)", "page connected (s)", "Home title shown (s)", "Home rendered (s, median)",
               "each repetition (s)", "priming start (s)", "server CPU until rendered (s, median)"]
    imp_rows = []
    for label in shoal:
        for what, fig in imports[label].items():
            heavy = ", ".join(f"{k} {fig[k]:.2f}" for k in HEAVY if fig.get(k))
            imp_rows.append([label, what, f"{fig['total']:.2f}", heavy or "—"])
    verdict = "met" if headline <= GOAL_S else "NOT met"
    if floor["rendered"] > GOAL_S:
        goal_line = (f"Goal (issue 11): Home rendered ≤ {GOAL_S:.0f} s after `streamlit run`. **The goal is below what "
                     f"a bare Streamlit app reaches on this machine**: a page with one `st.title` is rendered after "
                     f"**{floor['rendered']:.2f} s**; Shoal's Home after **{headline:.2f} s** (median, the slower data "
                     f"folder), **{above:+.2f} s** above that floor: goal **{verdict}**.")
    else:
        goal_line = (f"Goal (issue 11): Home rendered ≤ {GOAL_S:.0f} s after `streamlit run`; measured "
                     f"**{headline:.2f} s** (median, the slower data folder; a bare Streamlit app: "
                     f"{floor['rendered']:.2f} s, Shoal {above:+.2f} s above it): goal **{verdict}**.")
    compare = ""
    if len(shoal) > 1:
        compare = " " + "; ".join(
            f"{sc}: this tree {summary[('this tree', sc)]['rendered']:.2f} s vs the baseline "
            f"{summary[(shoal[1], sc)]['rendered']:.2f} s (ratio "
            f"{summary[('this tree', sc)]['rendered'] / summary[(shoal[1], sc)]['rendered']:.2f}; above the floor "
            f"{summary[('this tree', sc)]['rendered'] - floor['rendered']:.2f} s vs "
            f"{summary[(shoal[1], sc)]['rendered'] - floor['rendered']:.2f} s)"
            for sc in SCENARIOS) + "."
    result = {"bench": "cold_start", "repeats": args.repeats, "goal_s": GOAL_S, "goal_met": headline <= GOAL_S,
              "rendered_s": headline, "floor_s": floor["rendered"], "above_floor_s": above,
              "goal_below_floor": floor["rendered"] > GOAL_S,
              "summary": {f"{label} / {sc}": v for (label, sc), v in summary.items()},
              "imports_s": {label: {w: {k: round(v, 3) for k, v in f.items()} for w, f in imports[label].items()}
                            for label in shoal},
              "load_start": machine.load_start, "load_end": machine.load_end}
    if args.write:
        body = (
            "## Cold start: `streamlit run` to Home rendered in Chromium\n\n"
            + goal_line + compare + "\n\n"
            "**What**: `python -m streamlit run Home.py` headless on a free loopback port, in a temporary data "
            "folder (SQLite), as tests/support/streamlit_server.py starts it; the health endpoint is polled every "
            "25 ms and, as soon as it answers, a new context of an already running headless Chromium "
            "(/usr/bin/chromium, Playwright) opens the page. Times are from the server's `Popen` to: the server "
            "answering, the page's websocket connected, Home's title shown, and the first script run finished "
            "(`data-test-script-state=\"notRunning\"`), and the CPU seconds the server process (all its threads) "
            "had used when Home was rendered (steadier than the wall-clock figures, but it too varies between "
            "runs on this machine). Two data folders: *first start* (empty) and *with "
            "history* (a 300-post demo corpus and one finished offline run, so Home shows a current run, events "
            "and its recent-runs table). **The floor** (*bare Streamlit*): a temporary app whose Home.py is "
            "`st.title(\"🐟 Shoal\")` and nothing else, with this tree's .streamlit/config.toml, started with the same "
            "flags and opened the same way: what Streamlit and Chromium cost on this machine before any code of "
            "Shoal's runs. The rows *above the floor* subtract it. One priming start per case (it creates the "
            "database, writes the bytecode caches, warms the file cache) is reported apart; then "
            f"{args.repeats} starts per case, interleaved. The servers run with bytecode caching on "
            "(this sandbox sets PYTHONDONTWRITEBYTECODE=1; the script removes it for the servers, as on a user's "
            "machine). "
            + (f"The baseline is commit `{rev_name(args.baseline)}`, "
               "exported with `git archive` and measured in the same run. " if len(shoal) > 1 else "")
            + "Import times are `python -X importtime` of the imports at the top of each tree's Home.py and Home page (pages/0_Start.py) and of "
            "`import core.runtime`, median of 3 runs, cumulative seconds.\n\n"
            f"**Command**: {command_md()}\n\n" + machine.markdown() + "\n"
            + table(headers, rows) + "\n" + table(["code", "imports", "total (s)", "of which (cumulative s)"], imp_rows)
            + where_the_time_goes(summary, SCENARIOS))
        write_section("cold_start", body)
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
