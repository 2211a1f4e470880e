"""The "host" job: the host's speech for one forum round (and for the rounds completed meanwhile).

core.forum.Forum.post_summary adds it when a post completes a round (every FORUM_HOST_EVERY agent
messages); its params say which round, the id of the message that completed it, and the round's
size. The job reads that round's messages, the analyst's messages since the previous speech (which
the host answers first), and the previous speech, asks the host
(core.discussion.host.make_host: the LLM host with its offline fallback, or the offline host), and
posts the speech with the round number and, when an LLM wrote it, its llm_calls row id. It holds a
worker slot only while it speaks, and never waits for anything else: the previous round's job is
its dependency (JobSpec.depends_on), so the supervisor starts it only after that one has ended.

When it has spoken, the job also speaks for the next rounds whose jobs are already waiting for it
(at most MAX_FOLLOWING_ROUNDS), in order; each of those jobs then finds its round spoken and ends.

A host that fails logs a warning and posts nothing; the job still completes, so a run never fails
for want of a moderator. A job run again (a resume after a crash) does not speak twice for a round.
"""
from __future__ import annotations

from loguru import logger
from sqlalchemy import select

from core.forum import HOST_KIND, Forum, host_job_name, host_round
from core.llm.answered import answered_calls
from core.llm import run_budget
from core.infra.models import Job
from core.infra.tracing import trace_scope
from core.i18n import Msg
from core.work.jobs import JobCancelled, JobContext, LeaseLost
from core.work.states import JobState

__all__ = ["run_host_job"]

MAX_FOLLOWING_ROUNDS = 3  # later rounds one job speaks for, beyond its own


def run_host_job(ctx: JobContext) -> dict:
    outcome = _speak(ctx, *_round_of(ctx.params, ctx.settings))
    # The rounds completed meanwhile are spoken here, one after another, while their own jobs wait for
    # this one: each of those jobs then finds its speech and ends (`already_spoken`). Their jobs would
    # otherwise each be ended, claimed and started first, which while the engines run put 0.14-0.38 s
    # between one speech and the next (bench/critical_path.py); the host's nine speeches in a row were
    # the chain that ended last in about half the runs. Bounded, so a job's time stays one speech's few.
    spoken, last = [], outcome
    while last.get("spoke") and len(spoken) < MAX_FOLLOWING_ROUNDS and not ctx.cancelled:
        following = _waiting_round(ctx, int(last["round"]) + 1)
        if following is None:
            break
        next_round, trace = following
        with trace_scope(trace or ctx.trace_id):  # the speech's call and message carry its round's own job's trace
            last = _speak(ctx, *next_round, following=True)
        spoken.append(last)
    if spoken:
        outcome["following_rounds"] = spoken
    return outcome


def _speak(ctx: JobContext, round_no: int, upto: int, every: int, *, following: bool = False) -> dict:
    """One round's speech. ``following``: a later round's, spoken by this job ahead of that round's own
    job; a failure there is left to that job (it tries once more and reports it), not reported here."""
    from core.discussion.host import make_host

    settings, db, events = ctx.settings, ctx.db, ctx.events
    inputs = host_round(db, ctx.run_id, round_no, upto, every)  # with the analyst's messages not yet answered
    if inputs.spoken is not None:
        return {"round": round_no, "spoke": True, "message_id": inputs.spoken, "already_spoken": True}
    messages = inputs.messages
    forum = Forum(db, events, settings.log_dir, host_every=every)
    ctx.heartbeat(message=Msg("job.host_speaking", {"round": round_no, "messages": len(messages)}))
    try:
        host = make_host(settings, db, events, offline=bool(ctx.run_params.get("offline", False))
                         or run_budget.exhausted(db, ctx.run_id, settings))  # the run's budget spent: offline
        with answered_calls() as calls:
            text = host.speak(ctx.topic or "", messages, inputs.previous)
        ctx.check_cancelled()
        if not _still_running(ctx):
            # cancelled elsewhere (another process, or forced after the cancel timeout) while the host spoke:
            # a cancelled job posts nothing, even before its heartbeat notices
            raise JobCancelled("cancelled while speaking")
        if not isinstance(text, str) or not text.strip():
            return {"round": round_no, "spoke": False}
        view = forum.post_host(ctx.run_id, text, round_no=round_no,
                               llm_call_id=calls[-1].call_id if calls else None)
    except (JobCancelled, LeaseLost):
        raise
    except Exception as exc:  # noqa: BLE001 - a failing host never fails the run
        if following:
            logger.info("forum host: round {} of run {} is left to its own job: {}", round_no, ctx.run_id,
                        exc.__class__.__name__)
            return {"round": round_no, "spoke": False, "left_to_its_job": True}
        logger.warning("forum host failed for run {} round {}: {}: {}", ctx.run_id, round_no,
                       exc.__class__.__name__, exc)
        ctx.emit("forum.host_failed", {"round": round_no, "error": f"{exc.__class__.__name__}: {exc}"[:300]})
        return {"round": round_no, "spoke": False, "error": exc.__class__.__name__}
    return {"round": round_no, "spoke": view is not None, "message_id": view.id if view else None,
            "mode": getattr(host, "mode", "")}


def _round_of(params: dict, settings) -> tuple[int, int, int]:
    """(round, upto, every) from a host job's params (core.forum.Forum._schedule_host writes them)."""
    return int(params["round"]), int(params["upto"]), int(params.get("every") or settings["FORUM_HOST_EVERY"])


def _waiting_round(ctx: JobContext, round_no: int) -> tuple[tuple[int, int, int], str] | None:
    """((round, upto, every), trace id) of round ``round_no``'s host job while it is pending: the round is complete (its
    job is added by the post completing it) and nobody speaks for it yet (it waits for this job). None
    otherwise, and for a job whose params this version cannot read (it is left to itself)."""
    with ctx.db.session() as s:
        row = s.execute(select(Job.params, Job.trace_id).where(
            Job.run_id == ctx.run_id, Job.kind == HOST_KIND, Job.name == host_job_name(round_no),
            Job.status == JobState.PENDING)).first()
    if row is None:
        return None
    try:
        return _round_of(dict(row.params or {}), ctx.settings), row.trace_id or ""
    except (KeyError, TypeError, ValueError):
        return None


def _still_running(ctx: JobContext) -> bool:
    with ctx.db.session() as s:
        return s.scalar(select(Job.status).where(Job.id == ctx.job_id)) == JobState.RUNNING

