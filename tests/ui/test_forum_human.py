"""The Forum page's chat input (ui/forum_human.py): the analyst posts to the run the page follows, the
message shows in the transcript with its own avatar and label and in the speaker filter; an ended run,
an import, or a visitor without control gets a disabled input with the reason."""
from __future__ import annotations

from core.forum import transcript
from tests.pagetest import REMOTE, fresh_runtime, values, visit_as  # noqa: F401 - fresh_runtime is an autouse fixture
from tests.ui.test_forum_page import chats, four_messages, make_run, post, render
from ui.runtime import get_runtime


def test_the_analyst_posts_through_the_chat_input_and_sees_the_message():
    run_id = make_run("run-human-page")
    four_messages(run_id)
    at = render()
    [box] = at.chat_input
    assert not box.disabled and box.placeholder.startswith("Ask the engines a question")
    assert any("the host answers it in its next speech" in c for c in values(at.caption))
    box.set_value("二手车的保值率怎么样？")
    render(at)
    [stored] = [m for m in transcript(get_runtime().db, run_id) if m.source == "HUMAN"]
    assert (stored.type, stored.sender, stored.content) == ("human", "Analyst", "二手车的保值率怎么样？")
    assert any(f"message {stored.id}" in s for s in values(at.success)), values(at.success)
    # in the transcript (the round after the host's speech), with the analyst's avatar, counted apart
    assert ("Analyst", "🧑‍💼", "二手车的保值率怎么样？") in chats(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["🧑‍💼 Analyst"] == "1" and metrics["Messages"] == "5"
    speakers = at.multiselect(key="forum_feed_sources")
    assert "HUMAN" in speakers.options or "🧑‍💼 Analyst" in speakers.options
    speakers.set_value(["HUMAN"])
    render(at)
    assert [(n, a) for n, a, _ in chats(at)] == [("Analyst", "🧑‍💼")]


def test_a_refused_message_is_said_and_kept():
    run_id = make_run("run-human-blank")
    at = render()
    at.chat_input[0].set_value("   ")
    render(at)
    assert transcript(get_runtime().db, run_id) == []
    assert values(at.error) == ["The message is empty: write a question or a steer first."]
    assert "   " in [c.value for c in at.code]  # what was typed, shown back


def test_an_ended_run_or_an_import_gets_a_disabled_input_with_the_reason():
    run_id = make_run("run-human-done")
    with get_runtime().db.session() as s:
        from core.infra.models import Run

        s.get(Run, run_id).status = "completed"
    at = render()
    [box] = at.chat_input
    assert box.disabled and "This run has ended (completed)" in box.placeholder
    post(make_run("run-human-import", kind="forum_import"), "QUERY", "导入的消息", 0)
    at.toggle(key="forum_follow").set_value(False)
    render(at)
    at.selectbox(key="forum_run").set_value("run-human-import")
    render(at)
    assert at.chat_input[0].disabled and at.chat_input[0].placeholder == "Only a running analysis takes messages."


def test_a_remote_visitor_without_control_cannot_post(monkeypatch):
    visit_as(monkeypatch, REMOTE)
    make_run("run-human-remote")
    at = render()
    [box] = at.chat_input
    assert box.disabled and "control action" in box.placeholder
