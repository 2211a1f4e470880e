"""The one jieba loader: jieba imported and its dictionaries loaded once per process.

    get_jieba()     the ``jieba`` module, initialised (lcut, cut_for_search)
    get_posseg()    ``jieba.posseg`` (part-of-speech cutting, the word → tag table)
    idf_table()     (idf by word, median idf) of jieba's TF-IDF table

Each is a `core.text.warmup.Once`: loaded by the first caller, and callers arriving meanwhile wait
for that load instead of starting a second one. The runtime's warm-up thread
(`core.text.warmup.start_warmup`) calls all three at start, so a run normally finds them loaded;
nothing is loaded at import time. jieba's own logging (to stderr) is turned down.

The three tables are jieba's own, loaded faster than jieba loads them (a command-line run pays for
them on every start; bench/offline_run.py):

- the dictionary comes from jieba's cache file (the one `jieba.initialize()` writes and trusts)
  through `marshal.loads` of its bytes: a third of the CPU of jieba's `marshal.load(file)`, which
  calls back into Python for each of its ~500,000 entries. No usable cache: jieba's own load.
- the word → tag table (jieba parses dict.txt's 350,000 lines when jieba.posseg is imported) and
  the TF-IDF table (idf.txt, parsed as jieba.analyse's IDFLoader parses it, without importing
  jieba.analyse, whose extractors Shoal does not use) are kept, once parsed, in marshal files
  beside jieba's cache (`shoal-jieba-<table>.cache`, keyed by jieba's version and the source
  file's size and mtime). A missing, stale or unreadable file is parsed again and rewritten; one
  that cannot be written is only logged.

jieba keeps its cache in the system's temporary folder, shared by every user of the machine, and
loads it with `marshal`, which is not safe against a file made to harm. Here jieba's cache and the
tables live in a folder of this user's own (`shoal-cache-<uid>` in the temporary folder, mode 0700),
used only when it is ours and nobody else can write it; otherwise a new private folder for this
process (the tables are then parsed again, as on a first start).
"""
from __future__ import annotations

import getpass
import io
import logging
import marshal
import os
import sys
import tempfile
from itertools import islice
from types import ModuleType
from typing import Any, Callable

from loguru import logger

from core.text.warmup import Once

__all__ = ["get_jieba", "get_posseg", "idf_table"]


def _import_jieba() -> ModuleType:
    """``import jieba`` without pkg_resources. jieba._compat imports pkg_resources (setuptools' whole
    vendored packaging: 0.23 s of a command-line run here) only to open its own dictionary file, and
    opens it with a plain ``open`` when the import fails, as on a Python without setuptools. The
    ``None`` entry makes that one import fail and is removed at once; nothing of ours uses pkg_resources."""
    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    block = "pkg_resources" not in sys.modules
    if block:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]
    try:
        import jieba
    finally:
        if block and "pkg_resources" in sys.modules and sys.modules["pkg_resources"] is None:
            del sys.modules["pkg_resources"]
    return jieba


def private_cache_dir() -> str:
    """This user's cache folder in the temporary folder: created 0700, and used only if it is a real
    folder owned by this user that no one else may write; else a new private folder (mkdtemp)."""
    base = tempfile.gettempdir()
    path = os.path.join(base, f"shoal-cache-{os.getuid() if hasattr(os, 'getuid') else getpass.getuser()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        logger.debug("jieba cache folder {} not made: {}", path, exc)
    try:
        st = os.lstat(path)
        if (os.path.isdir(path) and not os.path.islink(path) and not st.st_mode & 0o022
                and (not hasattr(os, "getuid") or st.st_uid == os.getuid())):
            return path
    except OSError:
        pass
    logger.warning("{} is not a private folder of this user: jieba's caches go to a new one", path)
    try:
        return tempfile.mkdtemp(prefix="shoal-cache-")
    except OSError as exc:
        # No private folder at all (a read-only or full temporary folder): no caches rather than the
        # shared folder's. A path under the null device is a folder nothing can be read from or
        # written to, so jieba builds its dictionary and the tables are parsed, as on a first start.
        logger.warning("no private folder for jieba's caches ({}); loading without them", exc)
        return os.path.join(os.devnull, "shoal-cache")


def _load_jieba() -> ModuleType:
    jieba = _import_jieba()
    jieba.setLogLevel(logging.WARNING)
    if jieba.dt.tmp_dir is None:  # not chosen by the caller: out of the shared temporary folder
        jieba.dt.tmp_dir = private_cache_dir()
    _load_cached_dictionary(jieba)
    jieba.initialize()  # nothing left to do after the cache; otherwise builds (and caches) the dictionary
    return jieba


def _load_cached_dictionary(jieba: ModuleType) -> bool:
    """jieba's default dictionary from jieba's own cache file, as `Tokenizer.initialize` finds and
    trusts it, through one read and `marshal.loads`. False (jieba then loads as usual): another
    dictionary, no cache yet, or a cache that does not read as (dict, int)."""
    dt = jieba.dt
    if dt.initialized or dt.dictionary != jieba.DEFAULT_DICT:
        return False
    path = os.path.join(dt.tmp_dir or tempfile.gettempdir(), dt.cache_file or "jieba.cache")
    try:
        with open(path, "rb") as fh:
            freq, total = marshal.loads(fh.read())
    except (OSError, ValueError, EOFError, TypeError):
        return False
    if not isinstance(freq, dict) or not isinstance(total, int):
        return False
    with dt.lock:
        if not dt.initialized:
            dt.FREQ, dt.total, dt.initialized = freq, total, True
    return True


# -- the parsed tables, kept beside jieba's cache --------------------------------------------------

def _cache_path(jieba: ModuleType, table: str) -> str:
    return os.path.join(jieba.dt.tmp_dir or tempfile.gettempdir(), f"shoal-jieba-{table}.cache")


def _source_key(jieba: ModuleType, source: str) -> tuple:
    st = os.stat(source)
    return (jieba.__version__, os.path.abspath(source), st.st_size, st.st_mtime_ns)


def _read_table(path: str, key: tuple, valid: Callable[[Any], bool]) -> Any | None:
    try:
        with open(path, "rb") as fh:
            stored_key, value = marshal.loads(fh.read())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return value if stored_key == key and valid(value) else None


def _write_table(path: str, key: tuple, value: Any) -> None:
    """Atomically (a temporary file, then a rename), so a concurrent reader never sees half a file."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".shoal-jieba-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(marshal.dumps((key, value)))
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        logger.debug("jieba table cache {} not written: {}", path, exc)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _is_str_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                           for k, v in islice(value.items(), 100))


def _load_posseg() -> ModuleType:
    jieba = get_jieba()
    if "jieba.posseg" in sys.modules or jieba.dt.dictionary != jieba.DEFAULT_DICT:
        import jieba.posseg  # imported already (its table is built), or another dictionary: jieba's way
        return jieba.posseg
    source = os.path.join(os.path.dirname(jieba.__file__), "dict.txt")  # jieba's DEFAULT_DICT_NAME
    path = _cache_path(jieba, "tags")
    try:
        key = _source_key(jieba, source)
    except OSError:
        key = None
    tags = _read_table(path, key, _is_str_dict) if key else None
    if tags is None:
        import jieba.posseg  # builds its word → tag table from dict.txt on import

        if key:
            _write_table(path, key, jieba.posseg.dt.word_tag_tab)
        return jieba.posseg
    # On import jieba.posseg makes its tokenizer, which parses the dictionary file jieba.dt hands
    # it: here an empty one, and the table comes from the cache.
    jieba.dt.get_dict_file = io.BytesIO
    try:
        import jieba.posseg
    finally:
        del jieba.dt.get_dict_file  # the instance attribute goes; Tokenizer.get_dict_file is back
    jieba.posseg.dt.word_tag_tab = tags
    return jieba.posseg


def _is_idf(value: Any) -> bool:
    return (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], dict)
            and isinstance(value[1], float))


def _load_idf() -> tuple[dict, float]:
    """jieba.analyse's default table (jieba/analyse/idf.txt), parsed as its IDFLoader parses it."""
    jieba = get_jieba()
    source = os.path.join(os.path.dirname(jieba.__file__), "analyse", "idf.txt")
    path = _cache_path(jieba, "idf")
    key = _source_key(jieba, source)
    cached = _read_table(path, key, _is_idf)
    if cached is not None:
        return cached
    with open(source, "rb") as fh:
        content = fh.read().decode("utf-8")
    idf: dict[str, float] = {}
    for line in content.splitlines():
        word, freq = line.strip().split(" ")
        idf[word] = float(freq)
    table = (idf, sorted(idf.values())[len(idf) // 2])
    _write_table(path, key, table)
    return table


_jieba: Once[ModuleType] = Once(_load_jieba, "jieba dictionary")
_posseg: Once[ModuleType] = Once(_load_posseg, "jieba part-of-speech tags")
_idf: Once[tuple[dict, float]] = Once(_load_idf, "jieba TF-IDF table")


def get_jieba() -> ModuleType:
    return _jieba()


def get_posseg() -> ModuleType:
    return _posseg()


def idf_table() -> tuple[dict, float]:
    return _idf()
