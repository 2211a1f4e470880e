"""Keywords (core.text.keywords): content words only — nouns and the like, no plain verbs, no fragments
of reduplications, set patterns or longer words, no stray English. Each rule has a test that fails
without it."""
from __future__ import annotations

import pytest

from core.text.keywords import KeywordIndex, content_terms, extract_keywords, keyword_candidates, terms


def all_keywords(texts, **kw) -> list[str]:
    return extract_keywords(texts, top_k=100, **kw).top(100)


# --- part of speech --------------------------------------------------------------------------

def test_plain_verbs_and_adverbs_are_not_keywords_nouns_and_verbal_nouns_are():
    text = "官方声明称电池成本下降，博主测评续航，老车主维权，网友纷纷表示越来越离谱。"
    got = terms(text)
    for noun in ("官方", "声明", "电池", "成本", "续航", "车主", "维权"):  # n, nr (续航), n (维权)
        assert noun in got, noun
    for not_noun in ("下降", "测评", "纷纷表示", "越来越", "表示"):  # v, v, chengyu, adverb, verb
        assert not_noun not in got, not_noun
    kws = all_keywords([text, "电池成本继续下降，车企纷纷测评。"])
    assert "下降" not in kws and "测评" not in kws and "电池" in kws


def test_set_phrases_only_when_nominal_and_made_up_names_dropped():
    got = terms("发言人说这是发达国家的高等教育问题，是不是事实上差不多，客流明显增加。")
    assert {"发言人", "发达国家", "高等教育"} <= set(got)
    assert not {"是不是", "事实上", "差不多", "明显增加"} & set(got)  # fillers; 明显 a + 增加 v tagged as a name


# --- fragments -------------------------------------------------------------------------------

def test_reduplicated_name_is_kept_whole_not_cut_in_halves():
    got = terms("我在哔哩哔哩上看视频，哔哩哔哩的弹幕很多。")
    assert got.count("哔哩哔哩") == 2 and "哔哩" not in got
    assert "哔哩" not in all_keywords(["哔哩哔哩上的视频", "哔哩哔哩用户在弹幕里讨论"])
    # any reduplicated name, not only the platforms listed: jieba cuts 巴拉巴 + 拉, 娃哈 + 娃哈
    assert "巴拉巴拉" in terms("巴拉巴拉童装打折") and "巴拉巴" not in terms("巴拉巴拉童装打折")
    assert terms("娃哈娃哈饮料") == ("娃哈娃哈", "饮料")
    assert not terms("我们研究研究再说")  # a reduplicated verb is no keyword at all


@pytest.mark.parametrize("text, fragment", [
    ("大家越看越生气，电池问题没人管。", "看越"),
    ("谣言越传越离谱，电池问题没人管。", "越传越"),  # jieba: 越传越 tagged as a person's name
    ("问题越查越多，电池问题没人管。", "越查"),      # jieba: 越查 tagged as a verbal noun
    ("高高兴兴去提车，平平安安回家。", "高高兴兴"),  # AABB reduplications jieba tags as place names
])
def test_pieces_of_set_patterns_do_not_surface(text, fragment):
    assert fragment not in terms(text)


def test_platform_names_jieba_cuts_are_kept_whole():
    got = terms("抖音和小红书上热议，快手上的视频也很多，B站 up 主测评。")
    assert {"抖音", "小红书", "快手", "B站"} <= set(got)
    assert not {"红书", "音", "手上"} & set(got)
    assert "快手" not in terms("这款快手机很好用。")  # a fast phone, not the platform


def test_a_piece_of_a_longer_candidate_in_the_same_documents_is_dropped_for_the_longer_one():
    texts = ["比亚迪汽车销量大涨，销量第一", "汽车销量下滑，销量承压"]
    assert "汽车销量" in all_keywords(texts) and "销量" not in all_keywords(texts)
    # used elsewhere on its own, it is a word of its own
    more = texts + ["特斯拉销量", "理想销量回升"]
    assert "销量" in all_keywords(more)
    # a word that only ever occurs inside a longer one: 直播 of 直播间
    live = ["直播间里很热闹，直播间爆满", "直播间人数破万", "今晚直播带货，直播间爆满", "直播间抢购"]
    assert "直播间" in all_keywords(live) and "直播" not in all_keywords(live)
    assert "直播" in all_keywords(live + ["明晚直播", "直播带货火爆"])


# --- stray English -----------------------------------------------------------------------------

def test_pipeline_words_and_short_latin_are_never_keywords():
    texts = ["Query Engine 认为电池成本下降，Media Engine 发现抖音播放量高。",
             "Insight Engine：电池 query 结果，host 总结，http 链接，UP 主，5G 网络。"] * 2
    kws = all_keywords(texts)
    for w in ("engine", "query", "media", "insight", "host", "http", "up", "5g"):
        assert w not in kws, w
    assert "电池" in kws


def test_a_latin_word_in_one_chinese_text_only_is_stray_in_two_or_more_it_is_a_keyword():
    one = ["苹果发布会上 iPhone 降价，网友热议。", "华为手机销量上升，网友热议。", "小米手机降价。"]
    assert "iphone" not in all_keywords(one)
    two = one + ["iPhone 用户抱怨电池，网友热议。"]
    assert "iphone" in all_keywords(two)
    # English texts: every English word counts, in one text or more
    english = ["Tesla cut prices on every model.", "Owners demand refunds."]
    assert {"tesla", "prices", "owners", "refunds"} <= set(all_keywords(english))


# --- the contract ------------------------------------------------------------------------------

def test_extract_keywords_shape_and_exclusions_unchanged():
    texts = ["新能源汽车降价，车主维权。", "车主要求补偿，电池成本下降。", "电池质保延长。"]
    k = extract_keywords(texts, top_k=5, exclude=["新能源汽车"])
    assert isinstance(k, KeywordIndex) and len(k.ranked) <= 5
    assert all(isinstance(w, str) and isinstance(x, float) for w, x in k.ranked)
    assert k.docs["车主"] == frozenset({0, 1}) and k.docs["电池"] == frozenset({1, 2})
    assert not {"新能源", "汽车", "新能源汽车"} & set(k.top(5))
    assert k == extract_keywords(texts, top_k=5, exclude=["新能源汽车"])  # deterministic
    assert extract_keywords([]).ranked == ()
    cands = keyword_candidates(texts)
    assert list(cands.tf)[:3] == ["新能源", "汽车", "降价"]  # first appearance order


def test_topic_terms_keep_verbs_but_not_fragments():
    assert content_terms("高校食堂涨价") == ("高校", "食堂", "涨价")
    assert "哔哩" not in content_terms("哔哩哔哩弹幕") and "哔哩哔哩" in content_terms("哔哩哔哩弹幕")


TAGGED_TEXTS = [
    "新能源汽车价格战卷成这样，经销商快被压垮了，天天降价谁还敢买。",
    "abc 123 比亚迪BYD-2024款，价格1.5万元！！ @某人 #话题# https://x.y/z?q=1 😀\n\n第二行\t制表 A+B C# 3.14",
    "", " ", "。。。", "王小明说：哔哩哔哩上的视频研究研究，越看越觉得高高兴兴。",
]


@pytest.mark.parametrize("text", TAGGED_TEXTS)
def test_tagging_block_by_block_is_jiebas_tagging_of_the_whole_text(text):
    from core.text.jieba_loader import get_posseg
    from core.text.keywords import _tagged

    assert _tagged(text) == [(p.word, p.flag) for p in get_posseg().lcut(text)]


def test_a_block_seen_before_is_not_tagged_again(monkeypatch):
    from core.text import keywords
    from core.text.jieba_loader import get_posseg

    posseg = get_posseg()
    calls = []

    class Counting:  # jieba.posseg, counting the blocks it is asked to cut
        re_han_internal = posseg.re_han_internal

        @staticmethod
        def lcut(block):
            calls.append(block)
            return posseg.lcut(block)

    keywords._tagged_block.cache_clear()
    monkeypatch.setattr(keywords, "get_posseg", lambda: Counting)
    try:
        first = keywords._tagged("价格战打到最后，质量缩水。")
        second = keywords._tagged("质量缩水，价格战打到最后。")
    finally:
        keywords._tagged_block.cache_clear()
    assert calls.count("价格战打到最后") == 1 and calls.count("质量缩水") == 1
    assert sorted(first) == sorted(second) and first != second
    assert second == [(p.word, p.flag) for p in posseg.lcut("质量缩水，价格战打到最后。")]


def test_the_analysis_own_words_and_vague_time_phrases_are_never_keywords():
    """An engine's offline summary talks about itself (补充检索, 本段检索到的来源, 样本): the host
    read those as the engine's keywords and asked the others about 「检索」 and 「一段时间」."""
    texts = ["*补充检索「电池 续航」：新来源中未发现相关内容。* 本段检索到的来源显示，用户用了一段时间后抱怨续航虚标，"
             "离线分析器的样本中电池衰减被频繁提及。"] * 2
    kws = all_keywords(texts)
    for w in ("检索", "补充检索", "一段时间", "样本", "离线", "分析器"):
        assert w not in kws, w
    assert {"电池", "续航", "虚标"} <= set(kws)
