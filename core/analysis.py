"""Starting an analysis: validating the topic, choosing the mode, and the run's jobs."""
from __future__ import annotations

import re
import unicodedata

from . import forum_monitor  # noqa: F401 - analysis runs include the forum job: make sure it is registered
from . import report as report_engine
from . import telemetry
from .config import Settings
from .engine import ENGINES
from .jobs import JobSpec

MAX_TOPIC_CHARS = 200
ENGINE_NAMES = tuple(ENGINES)


class TopicError(ValueError):
    """A topic that cannot be analysed; the message says why and what to do."""


def clean_topic(raw: str | None) -> str:
    """Strip control characters and surrounding space; refuse empty and oversized topics."""
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\u200d" else ch
                   for ch in (raw or ""))
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise TopicError("Enter a topic to analyse, e.g. 武汉大学舆情 or 新能源汽车价格战.")
    if len(text) > MAX_TOPIC_CHARS:
        raise TopicError(f"The topic is {len(text):,} characters long; keep it under {MAX_TOPIC_CHARS} "
                         "(a few keywords or a short phrase work best).")
    return text


def parse_engines(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ENGINE_NAMES
    items = value.split(",") if isinstance(value, str) else list(value)
    engines = tuple(dict.fromkeys(e.strip().lower() for e in items if e.strip()))
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise ValueError(f"unknown engine(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ENGINE_NAMES)}")
    return engines


def run_mode(settings: Settings, engines: tuple[str, ...], offline: bool) -> str:
    if offline or settings["SHOAL_MODE"] == "offline":
        return "offline"
    return "llm" if any(settings.llm_configured(ENGINES[e].llm_role) for e in engines) else "offline"


def analysis_jobs(engines: tuple[str, ...]) -> list[JobSpec]:
    """One job per engine, and the forum monitor beside them (it ends when the engines have)."""
    return [JobSpec(kind=e, name=e) for e in engines] + [JobSpec(kind="forum", name="forum")]


def analysis_params(settings: Settings, engines: tuple[str, ...], *, paragraphs: int | None = None,
                    reflections: int | None = None, report_type: str = "auto", offline: bool = False) -> dict:
    p = int(paragraphs or settings["SHOAL_PARAGRAPHS"])
    r = int(settings["SHOAL_REFLECTIONS"] if reflections is None else reflections)
    if not 1 <= p <= 12:
        raise ValueError("paragraphs must be between 1 and 12")
    if not 0 <= r <= 5:
        raise ValueError("reflections must be between 0 and 5")
    return {"engines": list(engines), "paragraphs": p, "reflections": r, "report_type": report_type,
            "offline": run_mode(settings, engines, offline) == "offline"}


def start_analysis(supervisor, settings: Settings, topic: str, engines=None, *, paragraphs: int | None = None,
                   reflections: int | None = None, report_type: str = "auto", offline: bool = False) -> str:
    """Validate and queue an analysis; returns the run id. Raises TopicError/ValueError with a clear message."""
    topic = clean_topic(topic)
    engines = parse_engines(engines)
    params = analysis_params(settings, engines, paragraphs=paragraphs, reflections=reflections,
                             report_type=report_type, offline=offline)
    run_id = supervisor.submit_run(analysis_jobs(engines), kind="analysis", topic=topic, params=params,
                                   mode="offline" if params["offline"] else "llm")
    # The automatic report: its job waits for this run's engines (and the forum) and never reads
    # another run's outputs.
    report_engine.request_report(supervisor, supervisor.db, run_id)
    telemetry.record("run.submitted", run_id=run_id, payload={"engines": list(engines), "topic_chars": len(topic),
                                                              "paragraphs": params["paragraphs"],
                                                              "reflections": params["reflections"],
                                                              "offline": params["offline"]})
    return run_id


def rerun_engine(supervisor, run_id: str, engine: str) -> str:
    """Run one engine again (or for the first time) within an existing run; returns the new job id."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine}")
    (job_id,) = supervisor.add_jobs(run_id, [JobSpec(kind=engine, name=engine)])
    return job_id
