"""core/text/jieba_loader.py: the faster loads give exactly jieba's own tables."""
from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

from core.text import jieba_loader

ROOT = Path(__file__).resolve().parents[2]


def _jieba_like(tmp_path, dictionary=None):
    """What _load_cached_dictionary reads of the jieba module: dt and DEFAULT_DICT."""
    import jieba

    fake = type(sys)("jieba_like")
    fake.DEFAULT_DICT = jieba.DEFAULT_DICT
    fake.dt = jieba.Tokenizer(dictionary) if dictionary else jieba.Tokenizer()
    fake.dt.tmp_dir = str(tmp_path)
    return fake


def test_the_dictionary_from_jiebas_cache_is_the_one_jieba_loads_itself(tmp_path):
    import jieba

    own = jieba.Tokenizer()
    own.tmp_dir = str(tmp_path)
    own.initialize()  # no cache in tmp_path: jieba builds the dictionary and writes its cache there
    assert (tmp_path / "jieba.cache").is_file()

    fake = _jieba_like(tmp_path)
    assert jieba_loader._load_cached_dictionary(fake)
    assert fake.dt.initialized and fake.dt.total == own.total and fake.dt.FREQ == own.FREQ
    assert not jieba_loader._load_cached_dictionary(fake)  # loaded already: nothing to do


def test_without_a_usable_cache_jieba_loads_as_usual(tmp_path):
    fake = _jieba_like(tmp_path)
    assert not jieba_loader._load_cached_dictionary(fake)  # no cache file
    (tmp_path / "jieba.cache").write_bytes(b"not marshal")
    assert not jieba_loader._load_cached_dictionary(fake)
    (tmp_path / "jieba.cache").write_bytes(marshal.dumps(["a list", 1]))
    assert not jieba_loader._load_cached_dictionary(fake)
    assert not fake.dt.initialized
    # another dictionary than jieba's default: jieba's own load (its cache is not this one)
    assert not jieba_loader._load_cached_dictionary(_jieba_like(tmp_path, str(tmp_path / "user_dict.txt")))


_PROBE = """
import hashlib, json, sys, tempfile
from core.text import jieba_loader
posseg, (idf, median) = jieba_loader.get_posseg(), jieba_loader.idf_table()
import jieba, jieba.posseg
own = jieba.posseg.POSTokenizer(jieba.dt)  # parses dict.txt itself
import jieba.analyse
ref = jieba.analyse.default_tfidf
text = "新能源汽车价格战打到最后都是质量缩水，经销商快被压垮了"
print(json.dumps({"tags_same": posseg.dt.word_tag_tab == own.word_tag_tab, "tags": len(own.word_tag_tab),
                  "idf_same": idf == ref.idf_freq and median == ref.median_idf,
                  "cut_same": [tuple(p) for p in posseg.lcut(text)] == [tuple(p) for p in own.lcut(text)],
                  "dict_file_back": "get_dict_file" not in vars(jieba.dt)}))
"""


def _probe(tmp_path) -> dict:
    # TMPDIR: jieba's cache and the table caches in tmp_path (tempfile.gettempdir() reads it)
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_cached_tag_and_idf_tables_are_jiebas_and_are_rebuilt_when_unusable(tmp_path):
    want = {"tags_same": True, "idf_same": True, "cut_same": True, "dict_file_back": True}
    first = _probe(tmp_path)  # no cache: parsed, then written
    assert {k: first[k] for k in want} == want and first["tags"] > 300_000
    own = tmp_path / f"shoal-cache-{os.getuid()}"  # this user's folder in the temporary folder
    tags, idf = own / "shoal-jieba-tags.cache", own / "shoal-jieba-idf.cache"
    assert tags.is_file() and idf.is_file() and (own / "jieba.cache").is_file()
    assert own.stat().st_mode & 0o777 == 0o700 and not (tmp_path / "jieba.cache").exists()
    written = tags.stat().st_mtime_ns, idf.stat().st_mtime_ns
    second = _probe(tmp_path)  # read from the caches
    assert {k: second[k] for k in want} == want
    assert (tags.stat().st_mtime_ns, idf.stat().st_mtime_ns) == written  # read, not rewritten
    tags.write_bytes(b"garbage")
    key, (table, median) = marshal.loads(idf.read_bytes())
    idf.write_bytes(marshal.dumps((key[:-1] + (0,), ({"假": 1.0}, 1.0))))  # stale: another mtime
    third = _probe(tmp_path)
    assert {k: third[k] for k in want} == want
    assert marshal.loads(idf.read_bytes())[0] == key and marshal.loads(tags.read_bytes())[1]


def test_loading_the_tfidf_table_does_not_import_jieba_analyse():
    code = ("import sys\nfrom core.text import jieba_loader\njieba_loader.idf_table()\n"
            "print('jieba.analyse' in sys.modules, 'jieba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True"]


def test_jieba_is_loaded_without_pkg_resources_which_stays_importable():
    """jieba._compat imports pkg_resources only to open its dictionary; the loader makes that import
    fail so jieba opens the file itself, and leaves pkg_resources importable for anyone else."""
    code = ("import sys\nfrom core.text import jieba_loader\njieba = jieba_loader.get_jieba()\n"
            "import jieba._compat as c\n"
            "print('pkg_resources' in sys.modules, jieba.lcut('新能源汽车价格战') == ['新能源', '汽车', '价格战'],"
            " c.get_module_res('dict.txt').read(4) == b'AT&T')\n"
            "import pkg_resources\nprint(pkg_resources.__name__)")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True", "True", "pkg_resources"]


def test_a_cache_that_cannot_be_written_is_only_skipped(tmp_path):
    missing = tmp_path / "no-such-dir" / "shoal-jieba-idf.cache"
    jieba_loader._write_table(str(missing), ("k",), {"a": 1.0})
    assert not missing.exists() and not list(tmp_path.iterdir())


def test_the_loaded_jieba_segments_as_jieba_does():
    import jieba

    own = jieba.Tokenizer()
    text = "新能源汽车价格战打到最后都是质量缩水"
    assert jieba_loader.get_jieba().lcut(text) == own.lcut(text)


def test_the_cache_folder_is_used_only_when_it_is_this_users_and_private(tmp_path, monkeypatch):
    monkeypatch.setattr(jieba_loader.tempfile, "tempdir", str(tmp_path))
    own = tmp_path / f"shoal-cache-{os.getuid()}"
    assert jieba_loader.private_cache_dir() == str(own) and own.stat().st_mode & 0o777 == 0o700
    assert jieba_loader.private_cache_dir() == str(own)  # there already: used again
    own.chmod(0o777)  # anyone may write in it: not used, a new private folder instead
    other = jieba_loader.private_cache_dir()
    assert other != str(own) and Path(other).is_dir() and Path(other).stat().st_mode & 0o777 == 0o700
    own.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    own.symlink_to(elsewhere)  # a link planted in its place: not followed
    assert jieba_loader.private_cache_dir() not in (str(own), str(elsewhere))


def test_without_any_private_folder_the_caches_are_skipped_not_shared(tmp_path, monkeypatch):
    """A temporary folder nothing can be made in: jieba's caches go nowhere (a path under the null
    device), never to the shared folder, and reading or writing a table there only fails quietly."""
    monkeypatch.setattr(jieba_loader.tempfile, "tempdir", str(tmp_path / "missing"))
    path = jieba_loader.private_cache_dir()
    assert path.startswith(os.devnull) and not Path(path).exists()
    table = os.path.join(path, "shoal-jieba-idf.cache")
    jieba_loader._write_table(table, ("k",), {"a": 1.0})
    assert jieba_loader._read_table(table, ("k",), lambda v: True) is None
