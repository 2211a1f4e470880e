"""BettaFish's own Query engine, run from a checkout the bench is given: the engine bench's real baseline.

BettaFish is not on PyPI, Debian or npm, and its code is not part of this repository (GPL, and not
ours): `python bench/engine_parallel.py --bettafish DIR` runs it only when DIR holds a checkout with
`QueryEngine/` and `utils/retry_helper.py`, and `--bettafish-deps DIR` can add a folder holding
the packages it needs that Shoal does not (`pip install --target DIR tavily-python tiktoken`).

It runs in a child process of its own ("spawn"), as BettaFish runs each engine in its own Streamlit
process: its modules read their settings from the environment when imported and put folders on
`sys.path`. The child answers the parent's "run" with the seconds one `DeepSearchAgent(...).research`
took (the steps BettaFish's Query page runs one by one: structure, each paragraph's search, summary
and reflections, formatting, saving), against the same fake LLM endpoint and fake Tavily server as
Shoal's runs. The only changes made to it:

- `tavily.TavilyClient` is given the fake Tavily's URL as its `api_base_url` (BettaFish builds it
  with its API key only, so it would call api.tavily.com);
- its loguru output and its prints go to a file, not the bench's console;
- it runs in a temporary folder, where it writes its report and state files as it does in the app.

The fake LLM endpoint knows BettaFish's calls by their model name (`MODEL`) and answers each node by
the keys of the JSON it is given (bench/engine_parallel.py, `bettafish_reply`), so it does not depend
on the prompts' wording or language.
"""
from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "bettafish-baseline"
_START_TIMEOUT_S = 120.0
_RUN_TIMEOUT_S = 600.0


def _patch_tavily(base_url: str) -> None:
    import tavily  # BettaFish's dependency, not Shoal's: from --bettafish-deps, in BettaFish's process only

    init = tavily.TavilyClient.__init__

    def pointed_at_fake(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("api_base_url", base_url)
        init(self, *args, **kwargs)

    tavily.TavilyClient.__init__ = pointed_at_fake


def _research_once(topic: str) -> float:
    from QueryEngine.agent import DeepSearchAgent

    agent = DeepSearchAgent()
    t0 = time.monotonic()
    agent.research(topic, save_report=True)
    return time.monotonic() - t0


def _serve(conn, checkout: str, deps: str | None, env: dict[str, str], tavily_url: str, topic: str) -> None:
    """The child: set BettaFish up, run it once unmeasured (its first run imports and connects), then
    answer each "run" with the seconds one research took."""
    import os
    import tempfile

    os.environ.update(env)
    work = tempfile.mkdtemp(prefix="bettafish-")
    os.chdir(work)  # its .env lookup, logs/ and reports/ are relative to the working folder
    sys.path.insert(0, checkout)
    if deps:
        sys.path.append(deps)  # after Shoal's environment, so the packages both have come from there
    from loguru import logger

    log = open(Path(work) / "bettafish.log", "a", encoding="utf-8")
    logger.remove()
    logger.add(log, level="INFO")
    sys.stdout = log
    try:
        _patch_tavily(tavily_url)
        _research_once(topic)
        conn.send(("ready", work))
        while True:
            command = conn.recv()
            if command == "stop":
                break
            conn.send(("ran", _research_once(topic)))
    except Exception as exc:  # the parent reports it; a broken checkout must not hang the bench
        conn.send(("failed", f"{type(exc).__name__}: {exc} (log: {work}/bettafish.log)"))


class BettaFishQuery:
    """`with BettaFishQuery(checkout, deps, env, tavily_url, topic) as bf: seconds = bf.run()`."""

    def __init__(self, checkout: str, deps: str | None, env: dict[str, str], tavily_url: str, topic: str):
        root = Path(checkout).resolve()
        missing = [p for p in ("QueryEngine/agent.py", "utils/retry_helper.py") if not (root / p).is_file()]
        if missing:
            raise SystemExit(f"--bettafish {checkout}: not a BettaFish checkout (no {', '.join(missing)})")
        self._args = (str(root), str(Path(deps).resolve()) if deps else None,
                      {**env, "QUERY_ENGINE_MODEL_NAME": MODEL}, tavily_url, topic)
        self._conn = None
        self._proc = None
        self.workdir = ""

    def __enter__(self) -> "BettaFishQuery":
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, *self._args), name="bench-bettafish", daemon=True)
        self._proc.start()
        self.workdir = self._expect("ready", _START_TIMEOUT_S + _RUN_TIMEOUT_S)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()

    def _expect(self, what: str, timeout: float) -> Any:
        if not self._conn.poll(timeout):
            raise SystemExit(f"BettaFish's Query engine did not answer within {timeout:.0f} s")
        try:
            kind, value = self._conn.recv()
        except EOFError:  # its process ended without a word (killed, or crashed in native code)
            self._proc.join(5)
            raise SystemExit(f"BettaFish's Query engine process ended (exit code {self._proc.exitcode})") from None
        if kind != what:
            raise SystemExit(f"BettaFish's Query engine failed: {value}")
        return value

    def run(self) -> float:
        """Seconds one `DeepSearchAgent().research(topic)` took in the child."""
        self._conn.send("run")
        return self._expect("ran", _RUN_TIMEOUT_S)
