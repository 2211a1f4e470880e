"""The composition root: settings, logging, database, events, the job handlers and the supervisor,
built once per process, and the console's periodic work on its own thread.

Pages get it through ui.runtime (st.cache_resource); the command line builds its own. A broken
part (bad DATABASE_URL, unreachable MySQL, unwritable logs/) is recorded in `problems` and the
rest still comes up, so the app opens degraded instead of showing a traceback.

Job handlers are registered here, explicitly (`build_handlers`): importing a module registers
nothing.
"""
from __future__ import annotations

import atexit
import sys
import threading
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping

from loguru import logger

from core import analysis, forum
from core.corpus import data_jobs
from core.discussion import host_job, log_monitor
from core.research import engine
from core.work import probe
from core.i18n import Msg
from core.infra import retry
from core.infra.config import Settings, load_settings
from core.infra.db import Database, PoolOptions, open_database
from core.infra.events import EventLog
from core.infra.logs import setup_logging
from core.console.alerts import AlertEngine, default_rules, load_rules
from core.console.health import HealthMonitor
from core.llm.pricing import PriceTable, load_price_table
from core.console.monitoring import Monitor, compact_open_runs, detect_stalls
from core.console.resources import ResourceSampler
from core.llm.limits import default_limiter
from core.supervisor import Supervisor, SupervisorConfig
from core.work.active import exit_if_stuck
from core.console.telemetry import TelemetryWriter, set_default_writer
from core.text.warmup import Warmup, start_warmup
from core.work.jobs import HandlerRegistry


# Loading jieba and the sentiment model holds the interpreter for seconds: begin after the first page
# has rendered (it measured 2 s slower with the warm-up beside it, bench/cold_start.py), unless a run
# is submitted before (core.analysis hurries the warm-up). The app holds the warm-up until a page has
# been shown (ui.preload, an event); this delay is for the processes that show none (the command line).
WARMUP_DELAY_S = 5.0


REPORT_KIND = "report"  # core.reporting.inputs.KIND (tests/test_lazy_imports.py checks they agree)


def _run_report_job(ctx):
    """core.report.run_report_job, the report engine imported by the first report job, not at start-up:
    it is a fifth of the imports behind the app's first page (bench/cold_start.py)."""
    from core import report

    return report.run_report_job(ctx)


def build_handlers() -> HandlerRegistry:
    """Every job kind this process can run, and the function that runs it."""
    handlers = HandlerRegistry()
    for kind in engine.ENGINES:
        handlers.register(kind, engine.run_engine_job)
    handlers.register(forum.HOST_KIND, host_job.run_host_job)
    handlers.register(log_monitor.TAIL_KIND, log_monitor.run_tail_job)
    handlers.register(analysis.COVERAGE, analysis.run_coverage_job)
    handlers.register(REPORT_KIND, _run_report_job)
    handlers.register("probe", probe.run_probe)
    data_jobs.register(handlers)
    return handlers


@dataclass
class Runtime:
    settings: Settings
    db: Database
    events: EventLog
    supervisor: Supervisor | None
    problems: list[Msg] = field(default_factory=list)  # rendered in the reader's language; `problem_texts` in English
    handlers: HandlerRegistry = field(default_factory=HandlerRegistry)
    monitor: Monitor | None = None
    telemetry: TelemetryWriter | None = None
    resources: ResourceSampler | None = None
    alerts: AlertEngine | None = None
    prices: PriceTable | None = None
    health: HealthMonitor | None = None
    warmup: Warmup | None = None
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ok(self) -> bool:
        return self.db.ok and self.supervisor is not None

    @property
    def problem_texts(self) -> list[str]:
        """The problems in English, for the command line and exceptions."""
        return [p.render("en") for p in self.problems]

    def require_supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise RuntimeError("background work is unavailable: " + ("; ".join(self.problem_texts) or "not started"))
        return self.supervisor

    def new_supervisor(self, config: SupervisorConfig | None = None) -> Supervisor:
        """A supervisor wired to this runtime's handlers and services (not started). Jobs will run in
        this process: the text tooling warms up on its own thread (once per process), WARMUP_DELAY_S
        from now or as soon as a run is submitted."""
        self.warmup = start_warmup(WARMUP_DELAY_S)
        return Supervisor(self.db, self.events, config or SupervisorConfig.from_settings(self.settings),
                          handlers=self.handlers, settings=self.settings, forum=forum,
                          limits=default_limiter(self.settings.get("SHOAL_LLM_CONCURRENCY")))

    def close(self, timeout: float | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        _open_runtimes.pop(id(self), None)
        served = sys.modules.get(_METRICS_SERVER)  # loaded only where /metrics was served
        if served is not None:
            served.release(self)
        if self.monitor is not None:
            self.monitor.stop()
        if self.supervisor is not None:
            self.supervisor.shutdown(timeout)
        if self.resources is not None:
            self.resources.stop()
        if self.telemetry is not None:
            self.telemetry.close(timeout=5)
            set_default_writer(None, only_if=self.telemetry)
        if retry.event_sink() is self.events:
            retry.set_event_sink(None)
        self.events.close(timeout=5)  # the queued events, written before the pool goes
        self.db.dispose()


def pool_options(settings: Settings) -> PoolOptions:
    return PoolOptions(size=settings["DB_POOL_SIZE"], max_overflow=settings["DB_MAX_OVERFLOW"],
                       recycle=settings["DB_POOL_RECYCLE"], timeout=settings["DB_POOL_TIMEOUT"],
                       connect_timeout=settings["DB_CONNECT_TIMEOUT"])


def build_runtime(secrets: Mapping[str, Any] | None = None, *, start_supervisor: bool = True,
                  settings: Settings | None = None, console_log: bool = True, own_runs_only: bool = False) -> Runtime:
    """`own_runs_only`: the supervisor claims only the jobs of runs this process submits or takes over
    (`python -m core run`, `report`, `probe`); otherwise any run's (the app, `python -m core worker`)."""
    settings = settings or load_settings(secrets)
    # A broken DATABASE_URL is reported once, by the database below.
    problems = [msg for key, msg in settings.error_msgs.items() if key != "DATABASE_URL"]
    log_state = setup_logging(settings.log_dir, settings["SHOAL_LOG_LEVEL"], settings["SHOAL_LOG_ROTATION"],
                              settings["SHOAL_LOG_RETENTION"], settings.secret_values(), console=console_log)
    if log_state.problem:
        problems.append(Msg("widgets.problem_logs", {"detail": log_state.problem}))
    db = open_database(settings.database_url, pool_options(settings))
    if db.error:
        problems.append(Msg("widgets.problem_database", {"detail": db.error}))
    events = EventLog(db, max_per_run=settings["SHOAL_EVENTS_PER_RUN"])
    if db.ok:
        retry.set_event_sink(events)  # every retry anywhere in the process becomes an event
    runtime = Runtime(settings, db, events, None, problems, handlers=build_handlers())
    if db.ok and start_supervisor:
        try:
            config = SupervisorConfig.from_settings(settings)
            config.own_runs_only = own_runs_only
            runtime.supervisor = runtime.new_supervisor(config).start()
        except Exception as exc:  # noqa: BLE001 - degrade, do not crash the page
            problems.append(Msg("widgets.problem_supervisor", {"detail": str(exc)}))
            logger.exception("supervisor could not start")
    if start_supervisor:
        _start_console(runtime)
        if not own_runs_only:  # the app (and `run --serve`)
            serve_metrics(runtime, settings.get("SHOAL_METRICS_PORT") or 0)
    atexit.register(runtime.close)
    _close_before_threads_join(runtime)
    return runtime


# At interpreter exit, concurrent.futures joins the job threads (a hook it registers with threading)
# before atexit runs: a job still running would hold the exit until it finished, and the atexit close
# would find nothing left to hand back. So the runtimes still open are closed first, from threading's
# own exit hook: their supervisors ask running jobs to stop and hand them back as `interrupted` within
# SHOAL_SHUTDOWN_TIMEOUT, and close their worker rows. This is how the app stops on SIGTERM (Streamlit
# stops its server and lets the interpreter exit); the command line closes its runtime itself.
_open_runtimes: dict[int, Runtime] = {}
_exit_hook_lock = threading.Lock()
_exit_hooked = False


def _close_open_runtimes() -> None:
    for rt in list(_open_runtimes.values()):
        try:
            rt.close()
        except Exception:  # noqa: BLE001 - the interpreter is exiting; the next runtime still closes
            logger.exception("closing the runtime at exit failed")
    # A job that ignored its cancel would now hold the exit for as long as it runs (core.work.active).
    exit_if_stuck(1)


def _close_before_threads_join(runtime: Runtime) -> None:
    global _exit_hooked
    with _exit_hook_lock:
        _open_runtimes[id(runtime)] = runtime
        register = getattr(threading, "_register_atexit", None)  # CPython ≥ 3.9; else atexit alone
        if _exit_hooked or register is None:
            return
        try:
            register(_close_open_runtimes)  # hooks run in reverse: before concurrent.futures' join
            _exit_hooked = True
        except RuntimeError:  # the interpreter is already shutting down
            pass


# /metrics (core.console.metrics_server) is imported only when a port is set: prometheus_client is a
# tenth of the first page's imports on a cold start (bench/cold_start.py), and the app serves no
# metrics by default (SHOAL_METRICS_PORT=0).
_METRICS_SERVER = "core.console.metrics_server"


def serve_metrics(runtime: Runtime, port: int) -> None:
    """/metrics for this runtime on `port`: bound once per process, later runtimes take it over
    (core.console.metrics_server); 0 (off) closes an endpoint an earlier runtime opened. A port that
    cannot be bound is a problem, not a crash."""
    if not port:
        served = sys.modules.get(_METRICS_SERVER)
        if served is not None:
            served.stop()
        return
    from core.console import metrics_server

    try:
        metrics_server.serve_runtime(runtime, int(port))
    except OSError as exc:
        runtime.problems.append(Msg("widgets.problem_metrics_port", {"port": port, "detail": str(exc)}))
        logger.warning("metrics not served on port {}: {}", port, exc)


def _config_file(settings: Settings, key: str, default_name: str) -> Path | None:
    value = settings.get(key)
    if value:
        path = Path(value)
        return path if path.is_absolute() else settings.project_root / path
    candidate = settings.data_dir / default_name
    return candidate if candidate.is_file() else None


def _start_console(rt: Runtime) -> None:
    """The operations console's background parts: prices, telemetry, and the monitor thread that
    samples resources, runs health checks, evaluates alerts, flags stalled jobs and compacts events."""
    s = rt.settings
    price_file = _config_file(s, "SHOAL_PRICE_TABLE", "prices.json")
    rt.prices = load_price_table(price_file)
    rt.problems += [Msg("widgets.problem_prices", {"detail": p}) for p in rt.prices.problems]
    rt.resources = ResourceSampler(interval=s["SHOAL_SAMPLE_SECONDS"], disk_path=s.data_dir)
    rules, rule_problems = (load_rules(f) if (f := _config_file(s, "SHOAL_ALERT_RULES", "alert_rules.json"))
                            else (default_rules(s), []))
    rt.problems += [Msg("widgets.problem_alert_rules", {"detail": p}) for p in rule_problems]
    rt.alerts = AlertEngine(rules, events=rt.events if rt.db.ok else None)
    if rt.db.ok:
        rt.telemetry = TelemetryWriter(rt.db, max_buffer=s["SHOAL_TELEMETRY_BUFFER"])
        set_default_writer(rt.telemetry)
    rt.health = HealthMonitor(s, rt.db, rt.events if rt.db.ok else None)
    rt.monitor = Monitor()
    rt.resources.schedule_on(rt.monitor)
    if rt.supervisor is not None:
        cfg = rt.supervisor.config
        first = cfg.heartbeat_seconds  # health and alerts first run one heartbeat after start, then on their interval
        rt.monitor.add("health", s["SHOAL_HEALTH_SECONDS"], rt.health.run, first_after=first)
        rt.monitor.add("alerts", s["SHOAL_ALERT_SECONDS"], lambda: rt.alerts.tick(
            rt.db if rt.db.ok else None, resources=rt.resources, telemetry=rt.telemetry), first_after=first)
        rt.monitor.add("stalls", cfg.heartbeat_seconds, lambda: detect_stalls(rt.db, rt.events, cfg.stall_seconds))
        rt.monitor.add("events", 60.0, lambda: compact_open_runs(rt.db, rt.events, cfg.events_per_run))
    rt.monitor.start()
