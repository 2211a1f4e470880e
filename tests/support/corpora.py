"""Small on-topic corpora for tests that run whole analyses through faults (the fault matrix)."""
from __future__ import annotations

PLATFORMS = ("weibo", "douyin", "zhihu", "bilibili", "xhs", "tieba")


def price_war_posts(n: int) -> list[dict]:
    """`n` posts about 新能源汽车价格战 spread over six platforms, enough to pass the coverage check."""
    return [{"platform": PLATFORMS[i % len(PLATFORMS)], "post_id": f"ev{i}", "likes": i,
             "content": f"新能源汽车价格战第{i}轮，车企降价{i}千元，老车主不满，消费者观望，经销商库存承压"}
            for i in range(n)]
