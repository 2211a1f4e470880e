"""The supervisor's configuration, and finding the supervisor processes of this host that died."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil
from sqlalchemy import select

from core.infra.db import Database
from core.infra.models import Worker, from_epoch


@dataclass
class SupervisorConfig:
    max_workers: int = 8
    max_concurrent_runs: int = 2
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    stall_seconds: float = 180.0
    cancel_timeout: float = 10.0
    shutdown_timeout: float = 15.0
    max_attempts: int = 3
    auto_resume: bool = True
    events_per_run: int = 5000
    poll_seconds: float = 0.25
    kinds: frozenset[str] | None = None  # job kinds this supervisor may claim; None = every registered kind
    # True: claim only the jobs of runs this process submitted or took over (`python -m core run`,
    # `resume`); False: any run's (the app, `python -m core worker`, `run --serve`).
    own_runs_only: bool = False

    @classmethod
    def from_settings(cls, settings) -> "SupervisorConfig":
        return cls(
            max_workers=settings["SHOAL_MAX_WORKERS"],
            max_concurrent_runs=settings["SHOAL_MAX_CONCURRENT_RUNS"],
            lease_seconds=settings["SHOAL_LEASE_SECONDS"],
            heartbeat_seconds=settings["SHOAL_HEARTBEAT_SECONDS"],
            stall_seconds=settings["SHOAL_STALL_SECONDS"],
            cancel_timeout=settings["SHOAL_CANCEL_TIMEOUT"],
            shutdown_timeout=settings["SHOAL_SHUTDOWN_TIMEOUT"],
            max_attempts=settings["SHOAL_MAX_ATTEMPTS"],
            auto_resume=settings["SHOAL_AUTO_RESUME"],
            events_per_run=settings["SHOAL_EVENTS_PER_RUN"],
        )


def stop_dead_local_workers(db: Database, own_id: str, now: datetime) -> list[str]:
    """Workers registered on this host whose process is gone: mark them stopped, return their ids."""
    dead = []
    with db.session() as s:
        workers = s.scalars(select(Worker).where(Worker.host == socket.gethostname(), Worker.stopped_at.is_(None),
                                                 Worker.id != own_id)).all()
        for w in workers:
            if not process_alive(w.pid, w.started_at):
                dead.append(w.id)
                w.stopped_at = now
    return dead


def process_alive(pid: int, started_at: datetime | None) -> bool:
    """Alive and the same process (pids are reused: compare creation time with registration)."""
    try:
        proc = psutil.Process(pid)
        created = from_epoch(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    if proc.status() == psutil.STATUS_ZOMBIE:
        return False
    return started_at is None or created <= started_at + timedelta(seconds=5)
