"""The probe job: a self-test of the supervisor that exercises what real jobs rely on.

It counts through `steps` steps, sleeping `step_seconds` each (cancellable), heartbeating,
and checkpointing after every step with the worker that ran it. A resumed probe continues
from its checkpoint, so the checkpoint's `trail` shows exactly who ran which step: the
two-process takeover test reads it, and so can an operator (`python -m core probe`).
"""
from __future__ import annotations

from core.i18n import Msg
from core.work.jobs import JobContext, JobSpec

MAX_STEPS = 10_000


def run_probe(ctx: JobContext) -> dict:
    steps = max(0, min(int(ctx.params.get("steps", 10)), MAX_STEPS))
    step_seconds = max(0.0, float(ctx.params.get("step_seconds", 0.1)))
    fail_at = ctx.params.get("fail_at")
    start = int(ctx.checkpoint.get("step", 0))
    trail = list(ctx.checkpoint.get("trail", []))
    if start:
        ctx.emit("probe.resumed", {"from_step": start, "worker": ctx.worker_id, "attempt": ctx.attempt})
    for step in range(start, steps):
        ctx.check_cancelled()
        if fail_at is not None and step == int(fail_at):
            raise RuntimeError(f"probe asked to fail at step {step}")
        ctx.sleep(step_seconds)
        trail.append(ctx.worker_id)
        ctx.heartbeat(progress=(step + 1) / steps if steps else 1.0, message=Msg("job.probe_step", {"step": step + 1, "steps": steps}))
        ctx.save_checkpoint(step=step + 1, trail=trail)
    return {"steps": steps, "workers": sorted(set(trail))}


def probe_jobs(jobs: int = 1, steps: int = 10, step_seconds: float = 0.1, fail_at: int | None = None) -> list[JobSpec]:
    params = {"steps": steps, "step_seconds": step_seconds}
    if fail_at is not None:
        params["fail_at"] = fail_at
    return [JobSpec(kind="probe", name=f"probe-{i + 1}", params=params) for i in range(jobs)]
