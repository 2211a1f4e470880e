"""The forum host (moderator): one speech from the last N agent messages.

    host = make_host(settings, db, events, offline=False)
    text = host.speak(topic, messages, previous)     # messages: the last N ForumMessage, oldest first

Three hosts share that interface (``speak(topic, messages, previous) -> str``, ``mode``):

    OfflineHost   computed from the messages themselves, deterministic: keywords every agent
                  shares, each agent's distinctive keywords (frequent in its messages, absent or
                  rare in the others'), each engine's sentiment (see below), dates cited, and
                  coverage gaps turned into 2–3 questions addressed to the agents that never
                  mention a keyword. It cites only words found in the messages or topic.
                  Keywords are core.text.keywords.keyword_candidates of the messages: nouns and the
                  like, no fragments (哔哩 of 哔哩哔哩), no pipeline words (Engine), no plain verbs.
    LlmHost       asks the FORUM_HOST model for synthesis, disagreements and corrections, trends and
                  risks, and 2–3 guiding questions; raises LlmError on failure.
    FallbackHost  the LLM host, and the offline speech (with a short note) when it raises LlmError.

Sentiment is never re-scored from a message's text: an engine's figure is the one the engine
itself reports, the positive / neutral / negative shares (core.text.sentiment.shares) over the sources it
has retrieved so far — the ``sources`` of the checkpoint of the run's latest job of that engine,
scored once with core.text.sentiment.score_documents where a source has no score yet. An engine with no
(scored) source yet is "unknown". The LLM host is given the same figures and told to quote only them.

The analyst's messages (source HUMAN) posted since the host last spoke come in ``messages`` too
(core.discussion.host_job adds them); they never count as an engine's. Every host answers them
first: the offline host says, per question, which engines' messages mention its terms (quoting one
sentence) or that none does; the LLM host is told to answer each from the messages.

Speeches are Markdown, Chinese for a Chinese topic and English otherwise, at most MAX_SPEECH characters.
The "host" job (core.discussion.host_job) asks a host for each forum round.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Protocol, Sequence

from core.discussion.engine_sentiment import EngineSentiment, SourcesOf, run_of, sentiment_line
from core.forum import SENDERS, ForumMessage
from core.llm.errors import LlmError, LlmNotConfigured  # the client (and openai) load only for an LLM host
from core.research.offline import _TOPIC_FILLER
from core.research.offline_forum import question_terms
from core.text.clean import clean_text, has_cjk
from core.text.keywords import contains, content_terms, idf, keyword_candidates, split_sentences

if TYPE_CHECKING:
    from core.llm.client import LlmClient

__all__ = ["Host", "OfflineHost", "LlmHost", "FallbackHost", "make_host", "MAX_SPEECH", "AGENT_SOURCES",
           "HOST_NODE", "EngineSentiment", "sentiment_line"]

MAX_SPEECH = 1500
AGENT_SOURCES = ("QUERY", "MEDIA", "INSIGHT")
HOST_NODE = "ForumHostNode"
MAX_MESSAGE_CHARS = 3000        # of each message, in the LLM prompt
HUMAN_SOURCE = "HUMAN"          # the analyst's messages (core.forum.Forum.post_human)
MAX_HUMAN = 3                   # analyst's messages answered in one speech (the newest)
_SENTIMENT_GAP = 0.2            # a difference in negative share worth pointing out



class Host(Protocol):
    mode: str

    def speak(self, topic: str, messages: list[ForumMessage], previous: str | None) -> str: ...


# --- helpers --------------------------------------------------------------------------------

# Lines of an engine's summary that are its own statistics, not findings: the host takes figures from
# the engines' sources (below), so words like 时间跨度 or 热度 in them are not what agents "agree on".
_STATS_LINE = re.compile(r"^\s*(?:\*\*(?:统计|热度最高|分平台|内容形态|评论|按时间分布|主要传播者|Statistics|Top posts by "
                         r"hotness|By platform|Formats|Comments|Over time|Main spreaders)\*\*|\d+\. [「“])")


def findings_text(content: str) -> str:
    """A message without its statistics lines and top-post tables."""
    return "\n".join(line for line in (content or "").splitlines() if not _STATS_LINE.match(line))


def _zh(topic: str, messages: Sequence[ForumMessage] = ()) -> bool:
    if (topic or "").strip():
        return has_cjk(topic)
    return any(has_cjk(m.content) for m in messages)


def _name(source: str) -> str:
    return SENDERS.get(source, source.title())


def _agent_messages(messages: Sequence[ForumMessage]) -> list[ForumMessage]:
    return [m for m in messages or () if m.source in AGENT_SOURCES and (m.content or "").strip()]


def _human_messages(messages: Sequence[ForumMessage]) -> list[ForumMessage]:
    return [m for m in messages or () if m.source == HUMAN_SOURCE and (m.content or "").strip()][-MAX_HUMAN:]


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def bound(text: str, limit: int = MAX_SPEECH, zh: bool = True) -> str:
    """``text`` cut to at most ``limit`` characters at a line or sentence end, with a note."""
    text = text.strip()
    if len(text) <= limit:
        return text
    note = "…（主持人发言过长，已截断）" if zh else "… (host speech truncated)"
    head = text[: max(0, limit - len(note))]
    cut = max(head.rfind("\n"), max((head.rfind(ch) for ch in "。！？；.!?;"), default=-1) + 1)
    if cut >= len(head) // 2:
        head = head[:cut]
    return head.rstrip() + note


def _quote(w: str, zh: bool) -> str:
    return f"「{w}」" if zh else f"“{w}”"


def _join(items: Sequence[str], zh: bool) -> str:
    items = list(items)
    if zh:
        return "".join(items) if all(i.startswith("「") for i in items) else "、".join(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _occurrences(text_lower: str, w: str) -> int:
    return text_lower.count(w.lower()) if w else 0


_DATE_RE = re.compile(r"(?<!\d)(20\d{2})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?!\d)")


def _dates(text: str) -> list[str]:
    out = []
    for y, m, d in _DATE_RE.findall(text):
        mi, di = int(m), int(d)
        if 1 <= mi <= 12 and 1 <= di <= 31:
            out.append(f"{y}-{mi:02d}-{di:02d}")
    return out


def _asked(previous: str | None) -> str:
    """The questions of a previous speech (lower-cased): after its questions heading, else its lines
    with a question mark."""
    text = previous or ""
    m = re.search(r"(引导问题|guiding questions)", text, re.I)
    if m:
        return text[m.end():].lower()
    return "\n".join(line for line in text.splitlines() if "?" in line or "？" in line).lower()


# --- offline host -----------------------------------------------------------------------------

class OfflineHost:
    """A deterministic moderator computed from the messages (and, for sentiment, the run's engine
    sources: ``db``, or ``sources_of(run_id) -> {source: [Document dict, …]}``). Thread-safe."""

    mode = "offline"

    def __init__(self, db=None, *, sources_of: SourcesOf | None = None, max_chars: int = MAX_SPEECH,
                 top_k: int = 4):
        self.engine_sentiment = EngineSentiment(db, sources_of)
        self.max_chars = max_chars
        self.top_k = top_k

    # the analysis ---------------------------------------------------------------------------
    @staticmethod
    def _topic_words(topic: str) -> tuple[str, list[str]]:
        t = clean_text(topic).replace("\n", " ").strip()[:80]
        core = t
        for filler in _TOPIC_FILLER:
            if core.endswith(filler) and len(core) > len(filler) + 1:
                core = core[: -len(filler)].strip()
        return core, [w for w in content_terms(core) if w not in _TOPIC_FILLER]

    def analyse(self, topic: str, messages: Sequence[ForumMessage]) -> dict:
        """The figures the speech is made of (also handy for tests and the page)."""
        agent_msgs = _agent_messages(messages)
        agents = [s for s in AGENT_SOURCES if any(m.source == s for m in agent_msgs)]
        texts = {a: "\n".join(clean_text(findings_text(m.content)) for m in agent_msgs if m.source == a)
                 for a in agents}
        lowers = {a: t.lower() for a, t in texts.items()}
        core, topic_words = self._topic_words(topic)
        core_l = core.lower()

        def is_topic(w: str) -> bool:
            lw = w.lower()
            return bool(core_l) and (lw in core_l or any(lw == t.lower() for t in topic_words))

        # candidates (nouns and the like, no fragments, no stray English) in order of first
        # appearance, counted by occurrence in each agent's text
        cands = keyword_candidates([clean_text(m.content) for m in agent_msgs])
        first: dict[str, int] = {}
        for w in cands.words:
            if not is_topic(w):
                first[w] = len(first)
        tf = {w: {a: _occurrences(lowers[a], w) for a in agents} for w in first}
        df = {w: sum(1 for a in agents if tf[w][a] > 0) for w in first}
        n = len(agents)

        shared: list[str] = []
        if n >= 2:
            cands = [w for w in first if df[w] == n]
            cands.sort(key=lambda w: (-min(tf[w].values()) * idf(w), first[w]))
            shared = cands[: self.top_k + 1]

        distinctive: dict[str, list[str]] = {}
        for a in agents:
            scored = []
            for w in first:
                own = tf[w][a]
                if own == 0:
                    continue
                others = max((tf[w][b] for b in agents if b != a), default=0)
                if n >= 2 and (df[w] == n or own <= others):
                    continue  # shared by all, or another agent says it as often
                score = own * idf(w) * math.log((1 + n) / df[w]) if n >= 2 else own * idf(w)
                # ties (common for English words, which share jieba's median idf): the longer word
                scored.append((-round(score, 9), -len(w), first[w], w))
            scored.sort()
            distinctive[a] = [w for *_, w in scored[: self.top_k]]

        # gaps: a topic word, or a word only one agent uses, that other agents never mention
        gaps: list[tuple[str, str, list[str]]] = []   # (keyword, raised by: source | "TOPIC", missing)
        if n >= 1:
            for w in topic_words:
                missing = [a for a in agents if _occurrences(lowers[a], w) == 0]
                if missing:
                    gaps.append((w, "TOPIC", missing))
        if n >= 2:
            depth = max((len(v) for v in distinctive.values()), default=0)
            for i in range(depth):  # round-robin over agents, strongest keyword first
                for a in agents:
                    if i < len(distinctive[a]):
                        w = distinctive[a][i]
                        if df[w] == 1:
                            gaps.append((w, a, [b for b in agents if b != a]))

        return {"agents": agents, "absent": [s for s in AGENT_SOURCES if s not in agents], "texts": texts,
                "shared": shared, "distinctive": distinctive, "gaps": gaps, "topic_words": topic_words,
                "sentiment": self.engine_sentiment(run_of(agent_msgs)),
                "dates": sorted(set(_dates("\n".join(texts.values())))), "messages": len(agent_msgs)}

    # the speech -----------------------------------------------------------------------------
    def speak(self, topic: str, messages: list[ForumMessage], previous: str | None = None) -> str:
        zh = _zh(topic, messages)
        a = self.analyse(topic, messages)
        agents = a["agents"]
        q = lambda w: _quote(w, zh)  # noqa: E731
        answers = self._answer_humans(topic, messages, a, zh)
        if not agents:
            return "\n".join([("**主持人**：最近没有可供总结的引擎发言，等各引擎提交段落后再做梳理。" if zh else
                               "**Host**: there are no agent messages to sum up yet; I will moderate once the engines "
                               "post their paragraphs.")] + answers)
        lines: list[str] = []
        names = [_name(s) for s in agents]
        if zh:
            lines.append(f"**主持人小结**（基于最近 {a['messages']} 条发言：{'、'.join(names)}）")
        else:
            lines.append(f"**Host summary** (from the last {a['messages']} message(s): {', '.join(names)})")
        lines += answers
        if a["absent"]:
            absent = [_name(s) for s in a["absent"]]
            lines.append(f"- 本轮尚未发言：{'、'.join(absent)}" if zh else
                         f"- Not heard from in this round: {', '.join(absent)}")

        # agreement
        if len(agents) >= 2:
            if a["shared"]:
                kw = _join([q(w) for w in a["shared"]], zh)
                lines.append(f"- **共识**：各引擎都提到了{kw}。" if zh else
                             f"- **Common ground**: every engine mentions {kw}.")
            else:
                lines.append("- **共识**：各引擎之间暂无共同的关键词，视角差异较大。" if zh else
                             "- **Common ground**: the engines share no keyword yet; their angles differ widely.")
        # distinctive
        label = ("各自侧重" if zh else "Distinct angles") if len(agents) >= 2 else ("主要关键词" if zh else "Main keywords")
        lines.append(f"- **{label}**：" if zh else f"- **{label}**:")
        for s in agents:
            kws = a["distinctive"][s]
            body = _join([q(w) for w in kws], zh) if kws else ("（无突出的独有关键词）" if zh else "(no distinctive keyword)")
            lines.append(f"  - {_name(s)}：{body}" if zh else f"  - {_name(s)}: {body}")
        # sentiment
        lines.append(self._sentiment_line(a["sentiment"], agents, zh))
        # dates
        if len(a["dates"]) >= 2:
            d = a["dates"]
            lines.append(f"- **时间线**：发言涉及 {len(d)} 个日期，从 {d[0]} 到 {d[-1]}。" if zh else
                         f"- **Timeline**: the messages cite {len(d)} dates, from {d[0]} to {d[-1]}.")
        # previous questions answered
        answered = self._answered(previous, a, zh)
        if answered:
            lines.append(answered)
        # questions
        questions = self._questions(a, previous, zh)
        lines.append("**引导问题**：" if zh else "**Guiding questions**:")
        lines += [f"{i}. {text}" for i, text in enumerate(questions, 1)]
        return bound("\n".join(lines), self.max_chars, zh)

    def _answer_humans(self, topic: str, messages: Sequence[ForumMessage], a: dict, zh: bool) -> list[str]:
        """One line per analyst's question: what each engine's messages of the round say about its terms."""
        core, topic_words = self._topic_words(topic)
        out = []
        for m in _human_messages(messages):
            asked = _short(m.content)
            terms = question_terms(m.content, [core, *topic_words])
            if not terms:
                out.append(f"- **回应分析师**：关于「{asked}」，问题中没有可检索的关键词，请换个具体的说法。" if zh else
                           f"- **Answering the analyst**: “{asked}” has no searchable terms; please ask more specifically.")
                continue
            said, silent = [], []
            for s in a["agents"]:
                sentences = split_sentences(a["texts"].get(s, ""), min_chars=4)
                hits = [(sum(contains(x, t) for t in terms), -i, x) for i, x in enumerate(sentences)]
                best = max(hits, default=(0, 0, ""))
                if best[0]:
                    got = [t for t in terms if contains(best[2], t)]
                    said.append(f"{_name(s)} 谈到{_join([_quote(t, True) for t in got], True)}：“{_short(best[2])}”" if zh
                                else f"{_name(s)} on {_join([_quote(t, False) for t in got], False)}: "
                                     f"“{_short(best[2])}”")
                else:
                    silent.append(_name(s))
            shown = _join([_quote(t, zh) for t in terms], zh)
            if not said:
                out.append(f"- **回应分析师**：关于「{asked}」，本轮引擎发言都没有涉及{shown}；各引擎将在接下来的段落中检索并回答。"
                           if zh else
                           f"- **Answering the analyst**: on “{asked}”, no engine message of this round mentions "
                           f"{shown}; the engines will search it in their next paragraphs.")
                continue
            rest = ((f"；{'、'.join(silent)} 尚未涉及" if zh else f"; {', '.join(silent)} not yet") if silent else "")
            out.append(f"- **回应分析师**：关于「{asked}」，{'；'.join(said)}{rest}。" if zh else
                       f"- **Answering the analyst**: on “{asked}”: {'; '.join(said)}{rest}.")
        return out

    @staticmethod
    def _sentiment_line(senti: dict, agents: list[str], zh: bool) -> str:
        """Each engine's own figure (shares over its sources), and the difference worth checking."""
        lines = ["- **情绪**（各引擎来源的情感分布）：" if zh else "- **Sentiment** (over each engine's sources):"]
        for s in agents:
            lines.append(f"  - {_name(s)}：{sentiment_line(senti.get(s), True)}" if zh else
                         f"  - {_name(s)}: {sentiment_line(senti.get(s), False)}")
        known = [(s, senti[s]) for s in agents if s in senti]
        if len(known) >= 2:
            neg = lambda kv: kv[1].share("negative")  # noqa: E731
            hi = max(known, key=lambda kv: (neg(kv), -AGENT_SOURCES.index(kv[0])))
            lo = min(known, key=lambda kv: (neg(kv), AGENT_SOURCES.index(kv[0])))
            if neg(hi) - neg(lo) >= _SENTIMENT_GAP:
                lines.append(f"  - {_name(hi[0])} 的来源明显比 {_name(lo[0])} 的更负面，需核对双方依据。" if zh else
                             f"  - {_name(hi[0])}'s sources are clearly more negative than {_name(lo[0])}'s: "
                             f"their evidence should be checked.")
            else:
                lines.append("  - 各引擎来源的情绪倾向接近。" if zh else "  - The engines' sources have a similar tone.")
        return "\n".join(lines)

    @staticmethod
    def _answered(previous: str | None, a: dict, zh: bool) -> str:
        """Keywords quoted in the previous speech that every agent now mentions."""
        if not previous or len(a["agents"]) < 2:
            return ""
        quoted = re.findall(r"「([^」]{1,30})」|“([^”]{1,30})”", previous)
        got = []
        for pair in quoted:
            w = pair[0] or pair[1]
            if w and w not in got and all(_occurrences(t.lower(), w) for t in a["texts"].values()):
                got.append(w)
        if not got:
            return ""
        kw = _join([_quote(w, zh) for w in got[:4]], zh)
        return (f"- **回应上轮**：上次提到的 {kw} 现已被各引擎覆盖。" if zh else
                f"- **Since last time**: {kw}, raised before, is now covered by every engine.")

    def _questions(self, a: dict, previous: str | None, zh: bool) -> list[str]:
        prev = _asked(previous)
        gaps = sorted(enumerate(a["gaps"]), key=lambda ig: (ig[1][0].lower() in prev, ig[0]))
        out: list[str] = []
        used_kw: set[str] = set()
        addressed: Counter = Counter()
        # prefer gaps addressed to agents not yet asked, so questions spread over the engines
        while len(out) < 3 and gaps:
            best = min(range(len(gaps)), key=lambda i: (sum(addressed[m] for m in gaps[i][1][2]), i))
            _, (w, raised, missing) = gaps.pop(best)
            if w in used_kw:
                continue
            used_kw.add(w)
            addressed.update(missing)
            who = ("、" if zh else " / ").join(_name(m) for m in missing)
            if raised == "TOPIC":
                you = "你们" if len(missing) > 1 else "你"
                out.append(f"{who}：话题涉及{_quote(w, True)}，{you}的发言还没有提到它——{you}的资料对此有什么发现？" if zh else
                           f"{who}: the topic is about {_quote(w, False)}, which you have not mentioned yet — "
                           f"what do your sources show about it?")
            else:
                you = "你们" if len(missing) > 1 else "你"
                out.append(f"{who}：{_name(raised)} 提到了{_quote(w, True)}，而{you}尚未涉及——{you}的资料能证实、补充或反驳这一点吗？"
                           if zh else
                           f"{who}: {_name(raised)} raises {_quote(w, False)}, which you have not covered — can your "
                           f"sources confirm, add to or contradict it?")
        # fewer than two gaps: questions about what the engines already share or stress
        extra = []
        for w in a["shared"]:
            extra.append(f"{_name(a['agents'][0])}：关于{_quote(w, True)}，各引擎的说法是否一致？请给出具体来源和时间。"
                         if zh else
                         f"{_name(a['agents'][0])}: do the engines agree on {_quote(w, False)}? Please give the "
                         f"sources and dates.")
        for s in a["agents"]:
            for w in a["distinctive"].get(s, [])[:1]:
                extra.append(f"{_name(s)}：{_quote(w, True)}的依据是什么？有哪些数据或原始帖子支撑？" if zh else
                             f"{_name(s)}: what is the evidence for {_quote(w, False)}? Which data or original "
                             f"posts support it?")
        for text in extra:
            if len(out) >= 2:
                break
            if text not in out:
                out.append(text)
        if not out:
            out.append("各引擎：请补充具体的数据、来源和时间，以便下一轮对比。" if zh else
                       "All engines: please add concrete figures, sources and dates so the next round can compare them.")
        return out


# --- LLM host ---------------------------------------------------------------------------------

_SYSTEM_ZH = """你是一个多智能体舆情分析论坛的主持人。三个分析引擎在论坛中轮流发言：
- Query Engine：检索新闻与网页，侧重事实与时间线；
- Media Engine：分析视频、图片等多模态内容与平台表现；
- Insight Engine：挖掘社交媒体数据库，侧重公众情绪与观点。
请根据最近的引擎发言（以及你上一次的发言）写一段主持人发言，用中文 Markdown，包含：
1. **综合**：各引擎的共识与相互印证之处；
2. **分歧与纠正**：说法矛盾、证据不足或可能有误的地方，指出是哪个引擎；
3. **趋势与风险**：事态走向与潜在的舆情风险；
4. **引导问题**：2–3 个具体问题，每个问题点名一个引擎（如“Query Engine：……？”）。
只依据给出的发言，不要编造事实或数据。不要寒暄，不要复述任务，总长度不超过 800 字。"""

_SYSTEM_EN = """You are the host of a multi-agent public-opinion analysis forum. Three analysis engines post in turn:
- Query Engine: searches news and the web; facts and timeline.
- Media Engine: analyses video, images and other multimodal content and platform performance.
- Insight Engine: mines a social-media database; public sentiment and opinions.
From the latest engine messages (and your previous speech) write one host speech in English Markdown with:
1. **Synthesis**: what the engines agree on and where they corroborate each other;
2. **Disagreements and corrections**: contradictions, weak evidence or likely errors, naming the engine;
3. **Trends and risks**: where things are heading and the public-opinion risks;
4. **Guiding questions**: 2–3 concrete questions, each addressed to one engine ("Query Engine: ...?").
Use only what the messages say; invent no facts or figures. No greeting, no restating the task; at most 250 words."""

_PREAMBLE_RE = re.compile(r"^\s*(好的|当然|以下是|下面是|sure\b|okay\b|ok\b|certainly\b|here is\b|here's\b)[^\n]{0,80}[:：]\s*\n",
                          re.I)
_FENCE_RE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n\s*```\s*$", re.S)


def _clean_speech(text: str) -> str:
    """The speech without what a model wraps it in: a code fence, a leading 'Here is…:' line."""
    text = (text or "").strip()
    m = _FENCE_RE.match(text)
    if m:
        text = m.group(1).strip()
    text = _PREAMBLE_RE.sub("", text, count=1).strip()
    m = _FENCE_RE.match(text)
    if m:
        text = m.group(1).strip()
    return text


def _message_block(i: int, m: ForumMessage, zh: bool) -> str:
    content = (m.content or "").strip()
    if len(content) > MAX_MESSAGE_CHARS:
        content = content[:MAX_MESSAGE_CHARS].rstrip() + "…"
    para = ""
    if m.paragraph is not None:
        para = f" · 第 {m.paragraph} 段" if zh else f" · paragraph {m.paragraph}"
    ts = f" · {m.timestamp:%H:%M:%S}" if getattr(m, "timestamp", None) else ""
    return f"[{i}] {m.sender or _name(m.source)} ({m.source}){para}{ts}\n{content}"


class LlmHost:
    """The host as an LLM call (role FORUM_HOST, node ForumHostNode). Raises LlmError on failure."""

    mode = "llm"

    def __init__(self, client: LlmClient, *, max_chars: int = MAX_SPEECH, max_tokens: int | None = None,
                 db=None, sources_of: SourcesOf | None = None):
        self.client = client
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.engine_sentiment = EngineSentiment(db, sources_of)

    def _figures(self, messages: Sequence[ForumMessage], zh: bool) -> str:
        """The engines' own sentiment figures, for the model to quote instead of guessing."""
        agents = [s for s in AGENT_SOURCES if any(m.source == s for m in messages or ())]
        senti = self.engine_sentiment(run_of(messages)) if agents else {}
        if not senti:
            return ""
        rows = "\n".join(f"- {_name(s)}：{sentiment_line(senti.get(s), True)}" if zh else
                         f"- {_name(s)}: {sentiment_line(senti.get(s), False)}" for s in agents)
        return (f"各引擎来源的情感分布（引擎自己的统计；谈到情绪时只引用这些数字，不要自行估算）：\n{rows}\n\n" if zh else
                f"Each engine's sentiment over its sources (the engines' own figures; quote only these, never "
                f"estimate your own):\n{rows}\n\n")

    @staticmethod
    def _humans(messages: Sequence[ForumMessage], zh: bool) -> str:
        """The analyst's questions, and the order to answer them first."""
        humans = _human_messages(messages)
        if not humans:
            return ""
        asked = "\n".join(f"- {(m.content or '').strip()[:MAX_MESSAGE_CHARS]}" for m in humans)
        return (f"分析师（使用本系统的人）在论坛中的提问：\n{asked}\n请在发言开头以“**回应分析师**：”逐一回答，只依据引擎发言；"
                f"发言中没有相关内容的，如实说明并点名应检索的引擎。\n\n" if zh else
                f"The analyst (the person using this system) asked in the forum:\n{asked}\nStart the speech with "
                f"“**Answering the analyst**:” and answer each, from the engine messages only; where they say nothing "
                f"about it, say so plainly and name the engine that should search it.\n\n")

    def prompt(self, topic: str, messages: Sequence[ForumMessage], previous: str | None) -> tuple[str, str]:
        zh = _zh(topic, messages)
        msgs = [m for m in messages or () if (m.content or "").strip() and m.source != HUMAN_SOURCE]
        blocks = "\n\n".join(_message_block(i, m, zh) for i, m in enumerate(msgs, 1))
        prev = (previous or "").strip()
        if zh:
            user = (f"话题：{topic.strip() or '（未命名）'}\n\n"
                    f"你上一次的发言：\n{prev or '（无，这是第一次发言）'}\n\n"
                    f"最近 {len(msgs)} 条引擎发言：\n\n{blocks or '（无）'}\n\n{self._figures(msgs, zh)}"
                    f"{self._humans(messages, zh)}请写出本轮主持人发言。")
        else:
            user = (f"Topic: {topic.strip() or '(untitled)'}\n\n"
                    f"Your previous speech:\n{prev or '(none: this is your first speech)'}\n\n"
                    f"The last {len(msgs)} engine message(s):\n\n{blocks or '(none)'}\n\n{self._figures(msgs, zh)}"
                    f"{self._humans(messages, zh)}Write this round's host speech.")
        return (_SYSTEM_ZH if zh else _SYSTEM_EN), user

    def speak(self, topic: str, messages: list[ForumMessage], previous: str | None = None) -> str:
        zh = _zh(topic, messages)
        system, user = self.prompt(topic, messages, previous)
        result = self.client.complete(system, user, node=HOST_NODE, run_id=run_of(messages), max_tokens=self.max_tokens)
        text = _clean_speech(result.text)
        if not text:
            raise LlmError(f"{self.client.role}/{HOST_NODE}: the model returned an empty speech",
                           role=self.client.role, kind="parse")
        return bound(text, self.max_chars, zh)


class FallbackHost:
    """``primary`` (the LLM host); on LlmError the ``fallback`` (offline) speech with a short note."""

    def __init__(self, primary: Host, fallback: Host, *, max_chars: int = MAX_SPEECH):
        self.primary = primary
        self.fallback = fallback
        self.max_chars = max_chars
        self.mode = getattr(primary, "mode", "llm")
        self.last_error: str | None = None

    def speak(self, topic: str, messages: list[ForumMessage], previous: str | None = None) -> str:
        try:
            text = self.primary.speak(topic, messages, previous)
            self.last_error = None
            return text
        except LlmError as err:
            zh = _zh(topic, messages)
            why = " ".join(str(err).split())
            why = why if len(why) <= 160 else why[:159] + "…"
            self.last_error = why
            note = f"（离线主持人：LLM 主持人调用失败：{why}）" if zh else f"(offline host: the LLM host failed: {why})"
            speech = self.fallback.speak(topic, messages, previous)
            return note + "\n\n" + bound(speech, self.max_chars - len(note) - 2, zh)


def make_host(settings, db=None, events=None, offline: bool = False) -> Host:
    """FallbackHost(LlmHost, OfflineHost) when FORUM_HOST has an LLM and ``offline`` is False; else OfflineHost.
    ``db`` is where both read the engines' sources for their sentiment figures."""
    if not offline and settings.llm_configured("FORUM_HOST"):
        from core.llm.client import LlmClient

        try:
            client = LlmClient("FORUM_HOST", settings, db=db, events=events)
        except LlmNotConfigured:
            return OfflineHost(db)
        return FallbackHost(LlmHost(client, db=db), OfflineHost(db))
    return OfflineHost(db)
