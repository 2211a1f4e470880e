"""A post is quoted once per report, however many sections would like to quote it."""
from core.reporting.quotes import drop_repeated_quotes, quotes_in


def test_quotes_are_found_in_bullets_and_in_marks():
    assert quotes_in("- 涉事门店已暂停营业，检测结果预计一周内公布。 [3] [5]") == ["涉事门店已暂停营业，检测结果预计一周内公布。"]
    assert quotes_in("风险信号：「呵呵，食品安全问题一次次发生，太恶心了」[65]") == ["呵呵，食品安全问题一次次发生，太恶心了"]
    assert quotes_in("情感分布：正面 6.2%（5/81 条可判定来源）。") == []


def test_a_quote_repeated_in_a_later_section_or_the_same_one_is_dropped_and_others_stay():
    first = "**发现**：\n\n- 呵呵，食品安全问题一次次发生，太恶心了，气死我了！ [65]\n- 涉事门店已暂停营业。检测结果下周公布。 [3]"
    second = ("情感分布：负面 65.4%（53/81）。\n- 呵呵，食品安全问题一次次发生，太恶心了，气死我了！ [65]\n"
              "- 风险信号：「呵呵，食品安全问题一次次发生，太恶心了，气死我了」[65]\n- 退款方案仍有争议，消费者要求公开检测报告。 [9]")
    third = "- 退款方案仍有争议，消费者要求公开检测报告。 [9]\n- 退款方案仍有争议，消费者要求公开检测报告。 [9]"
    out = drop_repeated_quotes([first, second, third])
    assert out[0] == first
    assert out[1] == "情感分布：负面 65.4%（53/81）。\n- 退款方案仍有争议，消费者要求公开检测报告。 [9]"
    assert out[2] == ""
