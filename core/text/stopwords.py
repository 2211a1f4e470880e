"""The one stopword list, in two depths.

    FUNCTION_WORDS  function words (的 了 是 …, a the of …): never indexed nor searched
                    (core/corpus/search.py) and never a topic-expansion word (core/research/scope.py)
    STOPWORDS       FUNCTION_WORDS plus pronouns, generic verbs, time words and the filler of
                    social-media posts (转发 展开全文 网友 …), and the analysis's own words (检索 样本
                    段落 …, which the engines' summaries use about themselves): never a keyword
                    (core/text/keywords.py), so the host never asks an engine about 「检索」

Topic words are never listed. FUNCTION_WORDS stays short on purpose: a word listed there can no
longer be searched for (新闻, 微博 are STOPWORDS for keywords but searchable words).
"""
from __future__ import annotations

__all__ = ["FUNCTION_WORDS", "STOPWORDS"]

FUNCTION_WORDS = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 被 把 对 从 以 之 其 这 那 有 我 你 他 她 它 们 吗 呢 吧 啊 呀 哦 嗯 着 过 等 "
    "个 又 很 还 让 给 但 并 则 即 将 要 会 能 a an the of and or to in is are on for at by be as it".split()
)

STOPWORDS = FUNCTION_WORDS | frozenset("""
的 了 和 是 在 也 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 她们 它们 我 你 他 她 它 这 那 这个 那个
这些 那些 这样 那样 这么 那么 什么 怎么 怎么样 为什么 如何 哪里 哪些 谁 自己 大家 人家 别人 有人 有些
一些 一点 一下 一直 一起 一样 一定 一般 已经 还是 还有 只是 只有 但是 可是 然后 所以 因为 因此 如果 虽然
不过 而且 并且 或者 以及 还 又 再 很 太 最 更 非常 特别 真的 真是 确实 其实 当然 可能 应该 可以 能够 需要
不是 就是 不会 不能 不要 没 不 被 把 给 让 对 对于 关于 由于 为了 通过 根据 按照 之后 之前 以后 以前 时候
目前 现在 今天 昨天 明天 今年 去年 近日 日前 此前 此外 其中 其他 其它 另外 同时 方面 问题 情况 事情 东西
表示 认为 觉得 知道 看到 看看 看见 发现 成为 进行 开始 出现 希望 感觉 告诉 说 称 讲 想 要 会 能 去 来 做
有 没有 到 上 下 里 中 后 前 时 等 等等 个 们 之 其 此 该 各 每 某 本 将 已 并 则 即 但 却 才 仍 呢 吗 吧 啊
哦 哈 哈哈 哈哈哈 嗯 呀 啦 嘛 呗 哎 唉 哇 转发 微博 网页 链接 网页链接 全文 展开 展开全文 收起 原图 秒拍
视频号 评论 回复 点赞 分享 关注 粉丝 博主 超话 话题 热搜 网友 小编 记者 报道 消息 新闻 来源 图片 文章 内容
详情 原文 全部 相关 有关 进一步 一次 两个 一位 多少 很多 许多 不少 所有 任何 整个 真正 直接 主要 部分
the a an and or but if then than that this these those there here is are was were be been being to of in on
at by for with from as it its it's i you he she we they them his her our your their my me us not no yes do
does did done have has had having will would can could should may might must shall just also very so such
more most some any all each other into about over after before up down out off again only own same too
what which who whom when where why how rt via http https www com
一段时间 这段时间 一段 最近 近期
检索 补充检索 离线 分析器 样本 段落 本段
""".split())
