"""Analysis quality offline: are the sources of a report about its topic, are quotes distinct, are
topics the data does not cover refused?

The corpus is labelled and multi-topic: the demo corpus (8 topics, its posts labelled with their
topic in `demo_topic`) plus the six real Weibo topic files of `../shared/data/weibo2018/topics/`,
imported WITHOUT a keyword column (their label is kept only as `bench_topic` in the extras), so the
ranking cannot lean on a keyword field. For every topic an offline analysis runs end to end
(coverage, three engines, forum, report), and we measure:

- on-topic share of the LISTED sources (every source in the report's source list) and of the CITED
  ones (cited by a [n] in a report section), judged by the labels;
- the distinct-quote rate: quoted post sentences in the report with no near-duplicate among them
  (character-shingle Jaccard >= 0.7, core.text.dedup);
- whether topics the corpus does not cover end `insufficient_data` with no report;
- what relevance costs: the scope (terms, idf, expansion) and one ranked search, in milliseconds.

Labels: a post is on topic when its label is the topic's. The demo's 人工智能监管 posts are about
人工智能 too (and the reverse), so those two labels count for each other; nothing else does.

    python bench/analysis_quality.py [--posts 3000] [--topics 14] [--write]
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Machine, command_md, isolate, median, parser, table, write_section  # noqa: E402

SHARED_TOPICS = ROOT.parent / "shared" / "data" / "weibo2018" / "topics"
UNCOVERED = ["台风摩羯登陆海南", "巴黎奥运会开幕式争议", "量子计算机商用突破", "某地暴雨城市内涝"]
RELATED = {"人工智能": {"ai"}, "ai": {"人工智能"}}
P, R = 3, 1
_CITE = re.compile(r"\[(\d{1,4})\]")
_QUOTE_BULLET = re.compile(r"^\s*[-*]\s+(?:\*\*[^*]+\*\*\s*)?(.+?)\s*(?:\[\d+\]\s*)+$")
_QUOTE_MARKS = re.compile(r"[「“]([^」”]{8,})[」”]")


def shared_records() -> list[dict]:
    out = []
    for path in sorted(SHARED_TOPICS.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(",", 2)
            if len(parts) == 3 and parts[2].strip():
                out.append({"platform": "weibo", "post_id": f"w2018-{parts[0]}", "content": parts[2],
                            "bench_topic": path.stem})
    return out


def label_of(extras: dict) -> str | None:
    return (extras or {}).get("demo_topic") or (extras or {}).get("bench_topic")


def on_topic(label: str | None, key: str) -> bool:
    return label == key or (label in RELATED.get(key, set()))


def quotes_of(markdown: str) -> list[str]:
    out = []
    for line in markdown.splitlines():
        m = _QUOTE_BULLET.match(line)
        if m:
            out.append(m.group(1))
        out += _QUOTE_MARKS.findall(line)
    return [q.strip() for q in out if len(q.strip()) >= 8]


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=3000)
    ap.add_argument("--topics", type=int, default=14, help="how many covered topics to run (all 14 by default)")
    args = ap.parse_args()
    isolate("quality")
    machine = Machine()

    from core.analysis import start_analysis
    from core.infra.config import load_settings
    from core.corpus.search import search_posts
    from core.corpus.demo import TOPIC_SPECS, generate_demo_corpus
    from core.corpus.importers import import_records
    from core.report import latest_report
    from core.research.results import stored_sources
    from core.research.scope import build_scope
    from core.work.runs import get_run, jobs_of
    from core.runtime import build_runtime
    from core.text.dedup import similarity

    settings = load_settings()
    settings.values["SHOAL_MODE"] = "offline"
    rt = build_runtime(settings=settings, console_log=False)
    assert rt.ok, rt.problems
    rows, refusals, costs = [], [], []
    try:
        generate_demo_corpus(rt.db, seed=7, posts=args.posts)
        shared = shared_records() if SHARED_TOPICS.is_dir() else []
        if shared:
            import_records(rt.db, shared, source="bench")
        print(f"corpus: demo {args.posts} posts (+ comments), weibo2018 topics {len(shared)} posts", flush=True)
        topics = [(t.name, t.key) for t in TOPIC_SPECS]
        topics += [(p.stem, p.stem) for p in sorted(SHARED_TOPICS.glob("*.txt"))] if shared else []
        topics = topics[: args.topics]

        for topic, key in topics:
            t0 = time.perf_counter()
            scope = build_scope(rt.db, topic)
            scope_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            search_posts(rt.db, topic, limit=20, scope=scope)
            search_ms = (time.perf_counter() - t0) * 1000
            costs.append((scope_ms, search_ms))

            run_id = start_analysis(rt.supervisor, settings, topic, paragraphs=P, reflections=R, offline=True)
            status = rt.supervisor.wait_run(run_id, 900)
            run = get_run(rt.db, run_id)
            labels: dict[str, str | None] = {}
            for job in jobs_of(rt.db, run_id):
                # an engine's sources live in job_items since checkpoints stopped repeating them
                for src in stored_sources(rt.db, job.id, job.checkpoint):
                    if src is not None:
                        labels[src.document.doc_id or ""] = label_of(src.document.extras or {})
            report = latest_report(rt.db, run_id, completed=True)
            if report is None:
                rows.append([topic, status, (run.params.get("coverage") or {}).get("matching_posts"), "-", "-", "-", "-"])
                print(f"  {topic}: {status}, no report", flush=True)
                continue
            doc = json.loads(Path(report.json_path).read_text(encoding="utf-8"))
            listed = doc["sources"]

            def lab(s: dict) -> str | None:
                return labels.get(s.get("doc_id") or "")

            cited_ns = {int(n) for sec in doc["sections"] for n in _CITE.findall(sec.get("markdown") or "")}
            cited = [s for s in listed if s["n"] in cited_ns]
            on_listed = sum(on_topic(lab(s), key) for s in listed)
            on_cited = sum(on_topic(lab(s), key) for s in cited)
            quotes = [q for sec in doc["sections"] for q in quotes_of(sec.get("markdown") or "")]
            dup = set()
            for i in range(len(quotes)):
                for j in range(i + 1, len(quotes)):
                    if similarity(quotes[i], quotes[j]) >= 0.7:
                        dup.add(j)
            distinct = (len(quotes) - len(dup)) / len(quotes) if quotes else 1.0
            cov = run.params.get("coverage") or {}
            rows.append([topic, status, cov.get("matching_posts"),
                         f"{on_listed / len(listed):.3f} ({on_listed}/{len(listed)})" if listed else "-",
                         f"{on_cited / len(cited):.3f} ({on_cited}/{len(cited)})" if cited else "-",
                         f"{distinct:.3f} ({len(quotes) - len(dup)}/{len(quotes)})", len(dup)])
            print(f"  {topic}: {status}, matching {cov.get('matching_posts')}, listed on-topic {rows[-1][3]}, "
                  f"cited {rows[-1][4]}, distinct quotes {rows[-1][5]}", flush=True)

        for topic in UNCOVERED:
            run_id = start_analysis(rt.supervisor, settings, topic, paragraphs=P, reflections=R, offline=True)
            status = rt.supervisor.wait_run(run_id, 300)
            has_report = latest_report(rt.db, run_id) is not None
            refusals.append([topic, status, "yes" if has_report else "no"])
            print(f"  uncovered {topic}: {status}, report: {has_report}", flush=True)
    finally:
        rt.close()
    machine.end()

    def share(col: int) -> str:
        nums = [re.match(r"([\d.]+) \((\d+)/(\d+)\)", str(r[col])) for r in rows]
        on = sum(int(m.group(2)) for m in nums if m)
        total = sum(int(m.group(3)) for m in nums if m)
        return f"{on / total:.3f} ({on}/{total})" if total else "-"

    refused = sum(1 for r in refusals if r[1] == "insufficient_data" and r[2] == "no")
    body = (f"What: offline analyses (P={P}, R={R}) on a labelled multi-topic corpus (demo {args.posts} posts "
            f"+ the weibo2018 topic files without their keyword). Goal: ≥ 0.95 on-topic listed and cited, every "
            "uncovered topic refused, 0 near-duplicate quotes.\n\n"
            f"{command_md()}\n{machine.markdown()}\n"
            + table(["topic", "status", "matching posts", "on-topic listed", "on-topic cited", "distinct quotes",
                     "near-duplicate quotes"], rows)
            + f"\n\nAll topics: on-topic listed {share(3)}, cited {share(4)}; near-duplicate quotes "
              f"{sum(int(r[6]) for r in rows if str(r[6]).isdigit())}.\n\n"
            + table(["uncovered topic", "status", "report"], refusals)
            + f"\n\nUncovered topics refused: {refused}/{len(refusals)}.\n\n"
            + f"Relevance cost (median over topics): building the topic scope {median(c[0] for c in costs):.1f} ms, "
              f"one ranked, scoped search {median(c[1] for c in costs):.1f} ms.\n")
    print(body)
    if args.write:
        write_section("analysis_quality", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
