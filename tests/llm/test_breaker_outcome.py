"""What the circuit breaker leaves behind: its event makes the run degraded (llm_switched_off), said in
both languages on the pages, and one note per switched-off role in the report."""
from __future__ import annotations

from core.i18n import tr
from core.infra.models import Event
from core.llm.breaker import BREAKER_EVENT, switched_off_notes
from core.work import outcomes


def _open(db, run_id: str, role: str, failures: int = 3) -> None:
    with db.session() as s:
        s.add(Event(run_id=run_id, source="llm", type=BREAKER_EVENT,
                    payload={"role": role, "model": "qwen2.5:3b", "node": "FirstSearchNode", "failures": failures}))


def test_a_breaker_event_is_a_degraded_reason_with_a_sentence_in_both_languages(db):
    _open(db, "r-brk", "QUERY_ENGINE")
    _open(db, "r-brk", "QUERY_ENGINE")  # announced twice (two processes): one reason
    _open(db, "r-brk", "KEYWORD_OPTIMIZER", failures=4)
    _open(db, "r-other", "MEDIA_ENGINE")
    with db.session() as s:
        got = outcomes.degraded_reasons(s, "r-brk", jobs=[])
    assert got == [{"reason": "llm_switched_off", "engine": "keywords", "count": 4, "role": "KEYWORD_OPTIMIZER"},
                   {"reason": "llm_switched_off", "engine": "query", "count": 3, "role": "QUERY_ENGINE"}]
    en = outcomes.describe_msg(got[1]).render("en")
    zh = outcomes.describe_msg(got[1]).render("zh")
    assert "QUERY_ENGINE" in en and "3" in en and "offline analyst" in en
    assert "QUERY_ENGINE" in zh and "熔断" in zh and "⟦" not in zh + en
    assert "⟦" not in tr("zh", "widgets.reason_llm_switched_off") + tr("en", "widgets.reason_llm_switched_off")


def test_the_report_gets_one_note_per_switched_off_role(db):
    _open(db, "r-note", "INSIGHT_ENGINE", failures=3)
    [note] = switched_off_notes(db, "r-note")
    assert "INSIGHT_ENGINE" in note.render("en") and "qwen2.5:3b" in note.render("zh")
    assert switched_off_notes(db, "r-none") == []
