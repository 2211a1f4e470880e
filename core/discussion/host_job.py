"""The "host" job: one host speech for one forum round.

core.forum.Forum.post_summary adds it when a post completes a round (every FORUM_HOST_EVERY agent
messages); its params say which round, the id of the message that completed it, and the round's
size. The job reads that round's messages, the analyst's messages since the previous speech (which
the host answers first), and the previous speech, asks the host
(core.discussion.host.make_host: the LLM host with its offline fallback, or the offline host), and
posts the speech with the round number and, when an LLM wrote it, its llm_calls row id. It holds a
worker slot only while it speaks, and never waits for anything else: the previous round's job is
its dependency (JobSpec.depends_on), so the supervisor starts it only after that one has ended.

A host that fails logs a warning and posts nothing; the job still completes, so a run never fails
for want of a moderator. A job run again (a resume after a crash) does not speak twice for a round.
"""
from __future__ import annotations

from loguru import logger
from sqlalchemy import select

from core.forum import Forum, host_round
from core.llm.answered import answered_calls
from core.llm import run_budget
from core.infra.models import Job
from core.i18n import Msg
from core.work.jobs import JobCancelled, JobContext, LeaseLost
from core.work.states import JobState

__all__ = ["run_host_job"]


def run_host_job(ctx: JobContext) -> dict:
    from core.discussion.host import make_host

    settings, db, events = ctx.settings, ctx.db, ctx.events
    round_no, upto = int(ctx.params["round"]), int(ctx.params["upto"])
    every = int(ctx.params.get("every") or settings["FORUM_HOST_EVERY"])
    inputs = host_round(db, ctx.run_id, round_no, upto, every)  # with the analyst's messages not yet answered
    if inputs.spoken is not None:
        return {"round": round_no, "spoke": True, "message_id": inputs.spoken, "resumed": True}
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
        logger.warning("forum host failed for run {} round {}: {}: {}", ctx.run_id, round_no,
                       exc.__class__.__name__, exc)
        ctx.emit("forum.host_failed", {"round": round_no, "error": f"{exc.__class__.__name__}: {exc}"[:300]})
        return {"round": round_no, "spoke": False, "error": exc.__class__.__name__}
    return {"round": round_no, "spoke": view is not None, "message_id": view.id if view else None,
            "mode": getattr(host, "mode", "")}


def _still_running(ctx: JobContext) -> bool:
    with ctx.db.session() as s:
        return s.scalar(select(Job.status).where(Job.id == ctx.job_id)) == JobState.RUNNING

