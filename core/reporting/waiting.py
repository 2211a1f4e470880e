"""The report job's wait for the run's engines (and the forum's last speeches) before it writes.

The job is claimed once the jobs it depends on have ended (core.report.request_report), so the
engines normally have; the forum host's last speeches are jobs added while the engines ran, and
the sections wait for them. It looks at the run's jobs, then waits until a job of this process
ends (core.work.ledger.ENDINGS: the host's last speech ends in the supervisor that runs the
report), looking again at least every ``poll`` seconds for jobs run by other processes.
"""
from __future__ import annotations

import time
from typing import Callable

from core.i18n import Msg
from core.reporting.inputs import OPEN_JOB_STATES, engine_states, expected_engines
from core.work.jobs import INTERRUPTED, JobContext
from core.work.ledger import ENDINGS


def wait_for_jobs(ctx: JobContext, emit: Callable[[str, dict], object], *, others: bool, poll: float, grace: float,
                  auto_resume: bool) -> None:
    """Until no expected engine of the run is open, nor (``others``) any other job of it but the
    report, which it waits for at most ``grace`` seconds after the engines; emits report.waiting
    when what it waits for changes."""
    last: list[str] = []  # request_report announced what the job waited for while pending
    engines_done_at: float | None = None
    open_states = OPEN_JOB_STATES + ((INTERRUPTED,) if auto_resume else ())
    while True:
        ctx.check_cancelled()
        seen = ENDINGS.seq()
        latest, open_others, params = engine_states(ctx.db, ctx.run_id)
        pending = [e for e in expected_engines(params, latest) if latest.get(e) in open_states]
        if pending != last:
            emit("report.waiting", {"engines": pending, "other_jobs": open_others})
            last = pending
        if not pending:
            if not others or not open_others:
                return
            engines_done_at = engines_done_at or time.monotonic()
            if time.monotonic() - engines_done_at > grace:
                return
        ctx.heartbeat(progress=0.0 if pending else None,
                      message=Msg("job.report_waiting", {"jobs": ", ".join(pending or open_others)}))
        ENDINGS.wait(seen, poll)  # a cancel is seen at the next look, within ``poll``
