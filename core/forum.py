"""The forum: agents' paragraph summaries and the host's moderation, per run.

This release holds the read side the engines need (the host's latest speech goes into their
next summaries) and the counts a run summary reports; the log monitor, the host and the
BettaFish importer arrive with the forum release.
"""
from __future__ import annotations

from sqlalchemy import func, select

from .db import Database
from .models import ForumMessage


def latest_host_speech(db: Database, run_id: str) -> str | None:
    with db.session() as s:
        return s.scalar(select(ForumMessage.content).where(ForumMessage.run_id == run_id, ForumMessage.type == "host")
                        .order_by(ForumMessage.id.desc()).limit(1))


def message_counts(db: Database, run_id: str) -> dict[str, int]:
    """Messages of a run by type: {"agent": n, "host": n, "system": n}."""
    with db.session() as s:
        rows = s.execute(select(ForumMessage.type, func.count()).where(ForumMessage.run_id == run_id)
                         .group_by(ForumMessage.type)).all()
    counts = {"agent": 0, "host": 0, "system": 0}
    counts.update({t: n for t, n in rows})
    return counts
