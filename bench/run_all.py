"""Run every benchmark, one after the other, each in its own process; with --write, rewrite BENCHMARKS.md.

    python bench/run_all.py [--write] [--only engine_parallel,log_tail]

Each script prints its figures and, with --write, replaces its own section of BENCHMARKS.md (the
introduction is rewritten first). Scripts run in sequence, never side by side: on a 2-core machine
two benchmarks at once would measure each other.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ORDER, ROOT, loadavg, parser, write_intro  # noqa: E402

BENCH = Path(__file__).resolve().parent


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated script names (default: all, in order)")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or ORDER
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; choose from {ORDER}")
    print(f"# run_all: {', '.join(names)}; load average at start {loadavg()}", flush=True)
    if args.write:
        write_intro()
    failed = []
    t_all = time.perf_counter()
    for name in names:
        cmd = [sys.executable, str(BENCH / f"{name}.py")] + (["--write"] if args.write else [])
        print(f"\n## {name}: {' '.join(['python', f'bench/{name}.py'] + cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        via = "python bench/run_all.py" + (" --write" if args.write else "") + (f" --only {args.only}" if args.only else "")
        rc = subprocess.call(cmd, cwd=ROOT, env={**os.environ, "BENCH_VIA": via})
        print(f"## {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    print(f"\n# run_all: {time.perf_counter() - t_all:.0f} s in all; load average at end {loadavg()}"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
