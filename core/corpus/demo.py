"""A reproducible, clearly labelled demo corpus, so a fresh machine has something to analyse.

``generate_demo_records(seed, posts)`` makes a few thousand synthetic Chinese social-media posts
and comments about several topics (``DEMO_TOPICS``) on weibo, douyin, bilibili, xhs, zhihu,
tieba, kuaishou and news sites. Everything is derived from the seed alone — no wall clock, no
``hash()`` — so the same seed gives identical records on any machine and a second import only
updates rows (``generate_demo_corpus`` goes through ``core.corpus.importers.import_records``).

What makes it useful for the engines:

* each topic has its own vocabulary (sub-themes, actors, speakers, reasons for and against,
  neutral facts) and its own stance mix, which shifts during its event burst;
* texts are filled from templates with clear positive / negative / neutral wording, so the
  offline sentiment classifier agrees with the intended stance most of the time (sentiment is
  left ``None``: the classifier fills it); the intended stance is kept in extras for evaluation;
* platform shapes: short posts with #话题# and [emoji] on Weibo, video titles and tags on
  Douyin / Kuaishou / Bilibili, notes on Xiaohongshu, question → answer on Zhihu, threads on
  Tieba, headline + lead on news sites;
* ~90 days of dates ending at a seed-derived day, with an event-day spike per topic;
* heavy-tailed engagement (log-normal with rare Pareto boosts), and comments under hot posts.

Labelling: ``source`` "demo", every URL on ``demo.shoal.invalid`` (a reserved, unresolvable
domain), authors named 演示用户NNNN or 演示… media names, post ids starting ``demo``, and the fields
``demo`` (true), ``demo_seed``, ``demo_topic``, ``demo_subtheme`` and ``demo_stance``, which the
importer keeps in the post's extras.

The topics and the shared wording are data, in core/corpus/demo_data.py; this module generates.
"""
from __future__ import annotations

import math
import random
import re
from datetime import date, datetime, timedelta
from typing import Any

from core.corpus.demo_data import (_BODY, _COMMENT, _COMMON, _ENGAGEMENT, _EXTRA_CLAUSE, _HOURS, _NEWS_LEAD,
                                   _NEWS_TITLE, _QUESTION, _TITLE, DEMO_TOPICS, TOPIC_SPECS, TopicSpec)
from core.corpus.documents import hotness
from core.text.dates import parse_time

__all__ = ["DEMO_SOURCE", "DEMO_DOMAIN", "DEMO_URL_PREFIX", "WINDOW_DAYS", "PLATFORMS", "DEMO_TOPICS", "TOPIC_SPECS",
           "TopicSpec", "demo_window", "generate_demo_records", "generate_demo_corpus"]

DEMO_SOURCE = "demo"
DEMO_DOMAIN = "demo.shoal.invalid"
DEMO_URL_PREFIX = f"https://{DEMO_DOMAIN}/"
WINDOW_DAYS = 90
PLATFORMS = ("weibo", "douyin", "bilibili", "xhs", "zhihu", "tieba", "kuaishou", "news")
POST_LEN = (30, 200)
COMMENT_LEN = (6, 200)

_PLATFORM_WEIGHTS = {"weibo": 30, "douyin": 14, "bilibili": 10, "xhs": 11, "zhihu": 9, "tieba": 7,
                     "kuaishou": 8, "news": 11}
_PLATFORM_CODES = {"weibo": "wb", "douyin": "dy", "bilibili": "bili", "xhs": "xhs", "zhihu": "zh",
                   "tieba": "tb", "kuaishou": "ks", "news": "news"}
_STANCES = ("positive", "negative", "neutral")

_SLOT_RE = re.compile(r"\{([a-z_]+?)(\d?)(?::(\d+)-(\d+))?\}")


# ------------------------------------------------------------------------------------------ filling

class _Filler:
    """Fills {slot}, {slot2} (a different value of the same slot) and {int:a-b} from one RNG."""

    def __init__(self, rng: random.Random, slots: dict[str, tuple[str, ...]]):
        self.rng = rng
        self.slots = slots
        self.used: dict[str, list[str]] = {}

    def pick(self, name: str) -> str:
        options = self.slots[name]
        used = self.used.setdefault(name, [])
        fresh = [o for o in options if o not in used] or list(options)
        value = self.rng.choice(fresh)
        used.append(value)
        return value

    def fill(self, template: str, depth: int = 0) -> str:
        def one(m: re.Match) -> str:
            name, _n, lo, hi = m.groups()
            if name == "int":
                return str(self.rng.randint(int(lo), int(hi)))
            value = self.pick(name)
            return self.fill(value, depth + 1) if "{" in value and depth < 3 else value

        return _SLOT_RE.sub(one, template)


def _weighted(rng: random.Random, options, weights):
    return rng.choices(options, weights=weights, k=1)[0]


_REPEAT_RE = re.compile(r"([\u4e00-\u9fff]{2,6})\1")


def _tidy(text: str) -> str:
    """'预制菜' + '预制菜国家标准' must not read 预制菜预制菜国家标准."""
    return _REPEAT_RE.sub(r"\1", text)


def _fit(text: str, lo: int, hi: int) -> str:
    """Cut an over-long text at the last sentence break before `hi` characters."""
    if len(text) <= hi:
        return text
    cut = text[:hi]
    for mark in ("。", "！", "？", "；", "，"):
        pos = cut.rfind(mark)
        if pos >= lo:
            return cut[:pos + 1]
    return cut[:hi - 1] + "…"


# ------------------------------------------------------------------------------------ platform shapes

def _hashtags(f: _Filler, style: str, n: int) -> str:
    tags = []
    for _ in range(n):
        tag = f.pick("tag")
        if tag not in tags:
            tags.append(tag)
    if style == "weibo":
        return "".join(f"#{t}#" for t in tags)
    if style == "xhs":
        return " ".join(f"#{t}[话题]#" for t in tags)
    return " ".join(f"#{t}" for t in tags)


def _shape(rng: random.Random, f: _Filler, platform: str, stance: str, topic: TopicSpec) -> tuple[str, str]:
    """(title, content) in the platform's usual shape."""
    body = f.fill(rng.choice(_BODY[stance] + topic.templates.get(stance, ()) * 2))
    title = ""
    if platform == "weibo":
        if rng.random() < 0.75:
            body = _hashtags(f, "weibo", 1 if rng.random() < 0.7 else 2) + body
        if rng.random() < 0.1:
            body += f" @演示用户{rng.randrange(10000):04d}"
        content = body
    elif platform in ("douyin", "kuaishou"):
        title = f.fill(rng.choice(_TITLE[stance]))
        lead = "老铁们，" if platform == "kuaishou" and rng.random() < 0.5 else ""
        content = f"{lead}{body} {_hashtags(f, 'plain', 2 + rng.randrange(2))}"
    elif platform == "bilibili":
        title = f.fill(rng.choice(("【{kw}】", "{int:3-20}分钟看懂：", "【深度】", ""))) + f.fill(rng.choice(_TITLE[stance]))
        content = f.fill("本期视频聊聊{kw}的{aspect}。") + body + rng.choice(("一键三连支持一下！", "欢迎弹幕讨论。", ""))
    elif platform == "xhs":
        title = f.fill(rng.choice(_TITLE[stance])) + rng.choice(("✨", "😭", "🔥", "💡", "‼️"))
        opener = {"positive": "姐妹们！超推荐！", "negative": "避雷避雷！太失望了，", "neutral": "整理了一下，"}[stance]
        content = f"{opener}{body} {_hashtags(f, 'xhs', 2)}"
    elif platform == "zhihu":
        title = f.fill(rng.choice(_QUESTION))
        opener = f.fill(rng.choice(("谢邀。", "利益相关，{person}一枚。", "说点不一样的。", "")))
        content = opener + body
    elif platform == "tieba":
        title = f.fill(rng.choice(_TITLE[stance] + ("{kw}吧友进来聊聊{aspect}",)))
        content = body + rng.choice(("吧友们怎么看？", "", "顶一下。"))
    else:  # news
        title = f.fill(rng.choice(_NEWS_TITLE[stance]))
        lead = f.fill("据{media}消息，{time}，{actor}就{kw}{aspect}相关情况作出回应。{neu}。")
        content = lead + f.fill(_NEWS_LEAD[stance])
    content = _tidy(content)
    if len(content) < POST_LEN[0]:
        content = _tidy(content + f.fill(_EXTRA_CLAUSE[stance]))
    return _fit(_tidy(title), 4, 60), _fit(content, POST_LEN[0], POST_LEN[1])


# ------------------------------------------------------------------------------------------ timing

def _end_day(seed: int) -> date:
    """The last day of the demo window: from the seed, never from the clock."""
    return date(2025, 1, 1) + timedelta(days=random.Random(seed * 7919 + 17).randrange(365))


def _window(seed: int) -> tuple[datetime, datetime]:
    end = datetime.combine(_end_day(seed), datetime.min.time()) + timedelta(hours=23, minutes=59, seconds=59)
    start = datetime.combine(_end_day(seed) - timedelta(days=WINDOW_DAYS - 1), datetime.min.time())
    return start, end


def demo_window(seed: int = 7) -> tuple[datetime, datetime]:
    """First and last moment any demo record of this seed can have."""
    return _window(seed)


def _moment(rng: random.Random, start: datetime, day: int) -> datetime:
    hour = _weighted(rng, range(24), _HOURS)
    return start + timedelta(days=day, hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60))


# ------------------------------------------------------------------------------------------ engagement

def _engagement(rng: random.Random, platform: str, boost: float) -> dict[str, int]:
    mu, sigma, c_ratio, s_ratio, v_ratio = _ENGAGEMENT[platform]
    likes = rng.lognormvariate(mu + boost, sigma)
    if rng.random() < 0.01:  # the rare post that goes viral
        likes *= 5 * rng.paretovariate(1.2)
    likes = int(min(likes, 5e7))
    comments = int(likes * c_ratio * rng.lognormvariate(0, 0.6))
    shares = int(likes * s_ratio * rng.lognormvariate(0, 0.8))
    views = int((likes + 10) * v_ratio * rng.lognormvariate(0, 0.5)) if v_ratio else 0
    return {"likes": likes, "comments": comments, "shares": shares, "views": views}


# ------------------------------------------------------------------------------------------ authors

class _Authors:
    """A Zipf-like pool of demo users: a few post often, most post once or twice."""

    def __init__(self, rng: random.Random, size: int = 2000):
        self.rng = rng
        self.ids = [f"{i:04d}" for i in rng.sample(range(10000), size)]
        self.cum = list(_accumulate([1.0 / (i + 1) ** 0.9 for i in range(size)]))

    def user(self) -> str:
        return "演示用户" + self.rng.choices(self.ids, cum_weights=self.cum, k=1)[0]


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


# ------------------------------------------------------------------------------------------ records

def _labels(seed: int, topic: str, subtheme: str, stance: str) -> dict[str, Any]:
    """Fields the importer keeps as extras: what marks a record as demo data, and its intended stance
    (for measuring the sentiment classifier; the sentiment column itself stays empty)."""
    return {"demo": True, "demo_seed": seed, "demo_topic": topic, "demo_subtheme": subtheme, "demo_stance": stance}


def _url(platform: str, post_id: str) -> str:
    return f"{DEMO_URL_PREFIX}{platform}/{post_id}"


def generate_demo_records(seed: int = 7, posts: int = 3000) -> list[dict[str, Any]]:
    """`posts` synthetic posts plus comments under the hot ones; identical for the same seed."""
    if not isinstance(posts, int) or isinstance(posts, bool) or posts < 0:
        raise ValueError(f"posts must be a non-negative integer, not {posts!r}")
    if posts == 0:
        return []
    seed = int(seed)
    rng = random.Random(seed)
    start, end = _window(seed)
    # Topic calendars first, so they do not depend on how many posts are asked for.
    events = {t.key: (rng.randrange(15, WINDOW_DAYS - 8), rng.randrange(3, WINDOW_DAYS - 3)) for t in TOPIC_SPECS}
    authors = _Authors(random.Random(seed * 31 + 1))
    platforms = list(PLATFORMS)
    p_weights = [_PLATFORM_WEIGHTS[p] for p in platforms]
    t_weights = [t.weight for t in TOPIC_SPECS]

    records: list[dict[str, Any]] = []
    for i in range(posts):
        # the first posts cycle through every topic and platform, so even a tiny corpus covers them all
        topic = TOPIC_SPECS[i] if i < len(TOPIC_SPECS) else _weighted(rng, TOPIC_SPECS, t_weights)
        platform = platforms[(i * 3) % len(platforms)] if i < len(platforms) else _weighted(rng, platforms, p_weights)
        event_day, minor_day = events[topic.key]
        phase = rng.random()
        if phase < 0.40:  # the event burst: most on the day, decaying over the next days
            day, in_burst, boost = event_day + min(int(rng.expovariate(0.8)), 6), True, 1.0
        elif phase < 0.48:  # a smaller second wave
            day, in_burst, boost = minor_day + min(int(rng.expovariate(1.2)), 2), False, 0.4
        else:
            day, in_burst, boost = rng.randrange(WINDOW_DAYS), False, 0.0
        day = min(day, WINDOW_DAYS - 1)
        stance = _weighted(rng, _STANCES, topic.burst_mix if in_burst else topic.mix)
        aspect, details = topic.subthemes[rng.randrange(len(topic.subthemes))]
        slots = {**_COMMON, **topic.slots, "aspect": (aspect,), "detail": details}
        if "place" in slots:  # one city per post
            slots["place"] = (rng.choice(slots["place"]),)
        f = _Filler(rng, slots)
        title, content = _shape(rng, f, platform, stance, topic)
        post_id = f"demo{seed}-{_PLATFORM_CODES[platform]}-{i:06d}"
        author = rng.choice(_COMMON["media"]) if platform == "news" else authors.user()
        records.append({
            "platform": platform, "post_id": post_id, "kind": "post", "parent_id": None,
            "title": title, "content": content, "author": author,
            "publish_time": min(_moment(rng, start, day), end).isoformat(),
            **_engagement(rng, platform, boost),
            "url": _url(platform, post_id), "keyword": topic.name, "sentiment": None,
            **_labels(seed, topic.key, aspect, stance),
        })

    records.extend(_comments(rng, records, authors, end))
    return records


def _comments(rng: random.Random, posts: list[dict], authors: _Authors, end: datetime) -> list[dict]:
    """Comments under the hottest ~5% of posts, agreeing with the post two times in three."""
    by_key = {t.key: t for t in TOPIC_SPECS}
    ranked = sorted(posts, key=lambda r: (-hotness(r["likes"], r["comments"], r["shares"], r["views"]), r["post_id"]))
    hot = ranked[:max(1, len(posts) // 20)]
    out = []
    for parent in hot:
        topic = by_key[parent["demo_topic"]]
        details = next(d for a, d in topic.subthemes if a == parent["demo_subtheme"])
        n = min(max(3, int(2 + 3 * math.log10(1 + parent["comments"]))), 25, max(parent["comments"], 3))
        parent["comments"] = max(parent["comments"], n)
        t0 = parse_time(parent["publish_time"])
        for j in range(n):
            if rng.random() < 0.65:
                stance = parent["demo_stance"]
            else:
                stance = _weighted(rng, _STANCES, topic.mix)
            f = _Filler(rng, {**_COMMON, **topic.slots, "aspect": (parent["demo_subtheme"],), "detail": details})
            text = f.fill(rng.choice(_COMMENT[stance]))
            if parent["platform"] == "weibo" and rng.random() < 0.15:
                text = f"回复@{authors.user()}:{text}"
            cid = f"{parent['post_id']}-c{j:02d}"
            when = min(t0 + timedelta(hours=rng.expovariate(1 / 6)), end)
            out.append({
                "platform": parent["platform"], "post_id": cid, "kind": "comment", "parent_id": parent["post_id"],
                "title": "", "content": _fit(_tidy(text), COMMENT_LEN[0], COMMENT_LEN[1]), "author": authors.user(),
                "publish_time": when.replace(microsecond=0).isoformat(),
                "likes": int(rng.lognormvariate(1.0, 1.6)), "comments": 0, "shares": 0, "views": 0,
                "url": f"{parent['url']}#comment-{j:02d}", "keyword": parent["keyword"], "sentiment": None,
                **_labels(parent["demo_seed"], topic.key, parent["demo_subtheme"], stance),
            })
    return out


# ------------------------------------------------------------------------------------------ import

def generate_demo_corpus(db, seed: int = 7, posts: int = 3000, *, on_batch=None, on_records=None):
    """Generate and import the demo corpus (source "demo"); running it again updates, never duplicates.
    `on_records(records)` sees the generated records before the import (and returns them);
    `on_batch`: see core.corpus.importers.import_records (the demo job's progress)."""
    from core.corpus.importers import import_records

    records = generate_demo_records(seed=seed, posts=posts)
    if on_records is not None:
        records = on_records(records)
    return import_records(db, records, source=DEMO_SOURCE, default_platform="unknown", on_batch=on_batch)
