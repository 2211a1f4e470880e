"""CSV imports never lose rows silently: each kind of broken row, in the middle of a valid file, is one
error naming its line, and the valid rows around it are imported."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from core.corpus.import_files import import_file
from core.infra.models import Post

HEADER = "content,platform,likes\n"                  # line 1
BEFORE = "第一条关于汽车的帖子,weibo,1\n第二条,douyin,2\n"  # lines 2-3
AFTER = "第四条在坏行之后,xhs,4\n第五条也在后面,zhihu,5\n"    # the broken row is line 4; these follow it

GOOD = {"第一条关于汽车的帖子", "第二条", "第四条在坏行之后", "第五条也在后面"}


def contents(db) -> set[str]:
    with db.session() as s:
        return set(s.scalars(select(Post.content)))


def run_import(db, data: bytes, name: str = "posts.csv"):
    upload = io.BytesIO(data)
    upload.name = name
    return import_file(db, upload)


BAD_ROWS = {
    # an opening quote never closed: it used to swallow every row after it
    "unterminated quote": ('"坏行的引号没有闭合,weibo,3\n', "unterminated quote"),
    # a value quoted, then more text after the closing quote
    "quote closed mid-value": ('"半个"引号,weibo,3\n', "quot"),
    "too many values": ("多了,一列,weibo,3\n", "4 values but 3 columns"),
    "too few values": ("少了一列,weibo\n", "2 values but 3 columns"),
    "bad number": ("点赞数不是数字,weibo,很多\n", "likes"),
}


@pytest.mark.parametrize("kind", list(BAD_ROWS))
def test_a_broken_row_in_the_middle_is_one_error_at_its_line(db, kind):
    bad, words = BAD_ROWS[kind]
    report = run_import(db, (HEADER + BEFORE + bad + AFTER).encode("utf-8"))
    assert report.error_count == 1, report.error_texts()
    [(line, message)] = report.error_texts()
    assert line == 4 and words in message, message
    assert report.imported == 4 and contents(db) == GOOD


def test_undecodable_bytes_in_a_utf8_file_are_one_error_at_their_line(db):
    bad = b"\xff\xfe\xfd\xff,weibo,3\n"  # neither UTF-8 nor GB18030
    report = run_import(db, (HEADER + BEFORE).encode("utf-8") + bad + AFTER.encode("utf-8"))
    [(line, message)] = report.error_texts()
    assert line == 4 and "undecodable" in message and "utf-8" in message
    assert report.imported == 4 and contents(db) == GOOD


def test_undecodable_bytes_far_into_a_long_file_do_not_stop_it(db):
    # Past the 64 KB the encoding is detected from: the old reader stopped there ("the rest was not read").
    rows = "".join(f"第{i}条很长的帖子内容{'汽车' * 20},weibo,{i}\n" for i in range(1000))
    tail = "最后一条,weibo,1\n"
    data = (HEADER + rows).encode("utf-8") + b"\xff\xff\xff,weibo,1\n" + tail.encode("utf-8")
    report = run_import(db, data)
    [(line, message)] = report.error_texts()
    assert line == 1002 and "undecodable" in message
    assert report.imported == 1001 and "最后一条" in contents(db)


def test_an_unterminated_quote_that_meets_a_later_quote_loses_nothing(db):
    # The stray quote on line 4 pairs with the opening quote of the valid multi-line value on line 6.
    data = (HEADER + BEFORE + '"引号没有闭合,weibo,3\n' + "第五行,weibo,5\n"
            + '"合法的\n多行内容",weibo,6\n' + "最后一行,weibo,8\n")
    report = run_import(db, data.encode("utf-8"))
    [(line, message)] = report.error_texts()
    assert line == 4 and "unterminated quote" in message and "line 4" in message
    assert contents(db) == {"第一条关于汽车的帖子", "第二条", "第五行", "合法的\n多行内容", "最后一行"}


def test_an_unterminated_quote_closed_by_a_stray_quote_is_still_caught(db):
    # The quote from line 4 closes cleanly at a stray quote inside line 5: a well-formed record, but
    # two values wide and over two lines: reported at line 4, and line 5 read again as a row.
    # (A stray quote that closes exactly at the end of a full row's first value makes a record
    # of the right width: indistinguishable from an intended multi-line value, it is imported as one.)
    data = HEADER + BEFORE + '"未闭合,weibo,3\n' + '第五行,weibo",5\n' + "第六行,weibo,6\n"
    report = run_import(db, data.encode("utf-8"))
    errors = dict(report.error_texts())
    assert 4 in errors and "line 4" in errors[4] and "line 5" in errors[4], errors
    assert {"第一条关于汽车的帖子", "第二条", "第五行", "第六行"} <= contents(db)
    assert report.error_count + report.imported + report.skipped == 5  # every data line accounted for


def test_several_broken_rows_each_reported(db):
    data = (HEADER + "好,weibo,1\n" + '"坏一,weibo,1\n' + "好二,weibo,2\n" + "坏二,weibo,x\n"
            + "坏三,weibo\n" + "好三,weibo,3\n" + '"坏四"尾巴,weibo,1\n' + "好四,weibo,4\n")
    report = run_import(db, data.encode("utf-8"))
    assert [line for line, _ in report.error_texts()] == [3, 5, 6, 8]
    assert contents(db) == {"好", "好二", "好三", "好四"}


def test_line_numbers_count_multi_line_values_and_crlf(db):
    data = ("content,platform,likes\r\n" + '"第一条\r\n跨两行",weibo,1\r\n' + "坏,weibo,x\r\n" + "好,weibo,2\r\n")
    report = run_import(db, data.encode("utf-8"))
    assert report.error_texts() == [(4, "likes: cannot read 'x' as a count")]
    assert contents(db) == {"第一条\r\n跨两行", "好"}


def test_gb18030_file_with_a_broken_row(db):
    data = (HEADER + BEFORE + '"坏行,weibo,3\n' + AFTER).encode("gb18030")
    report = run_import(db, data)
    [(line, _)] = report.error_texts()
    assert line == 4 and contents(db) == GOOD


def test_tsv_with_a_broken_row(db):
    data = "content\tplatform\tlikes\n好\tweibo\t1\n\"坏\tweibo\t2\n后面\tweibo\t3\n"
    report = run_import(db, data.encode("utf-8"), name="posts.tsv")
    [(line, _)] = report.error_texts()
    assert line == 3 and contents(db) == {"好", "后面"}


def test_jsonl_with_undecodable_bytes_keeps_the_lines_after_them(db):
    lines = [json.dumps({"content": "第一条", "platform": "weibo"}, ensure_ascii=False).encode(),
             b'{"content": "\xff\xfe", "platform": "weibo"}',
             json.dumps({"content": "第三条", "platform": "weibo"}, ensure_ascii=False).encode()]
    report = run_import(db, b"\n".join(lines) + b"\n", name="posts.jsonl")
    [(line, message)] = report.error_texts()
    assert line == 2 and "undecodable" in message
    assert contents(db) == {"第一条", "第三条"}
