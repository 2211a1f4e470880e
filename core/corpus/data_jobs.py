"""Demo data and file imports as supervisor jobs: they run on the job pool, report their progress,
and go on when the page that started them is left or closed.

A data run (Run.kind ``data``) holds one job: ``data_demo`` (generate and import the demo corpus) or
``data_import`` (import a file already on this server's disk, in batches). Each batch written moves
the job's progress bar and message; a cancel stops the import between batches, keeping the batches
written (importing again updates them, never duplicates). The job's result is the ImportReport
(``ImportReport.as_dict``): counts and the broken rows by file line (core/corpus/csv_rows.py).

Uploads reach the import job as a file on disk: the page copies the upload there in chunks at once
(``save_upload``) and drops it from memory; the job deletes the file once it has been read.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.corpus.demo import generate_demo_corpus
from core.corpus.import_files import import_file
from core.corpus.importers import ImportReport, error_msg
from core.i18n import Msg
from core.work.jobs import JobCancelled, JobContext, JobSpec
from core.work.runs import RunView, jobs_of, list_runs

RUN_KIND = "data"
DEMO_KIND = "data_demo"
IMPORT_KIND = "data_import"
KINDS = (DEMO_KIND, IMPORT_KIND)
UPLOAD_DIR = "uploads"
COPY_CHUNK = 1 << 20  # an upload is copied to disk 1 MiB at a time
# A JSON list is parsed whole (about ten times its size in memory); larger ones must be JSONL or CSV.
MAX_JSON_BYTES = 50 * 2**20
DEMO_SEED, DEMO_POSTS = 7, 3000
MAX_DEMO_POSTS = 50_000


def _say(ctx: JobContext, msg: Msg, progress: float | None = None) -> None:
    """The job's progress and message; the message also goes into the checkpoint as a Msg, so a page
    shows it in its reader's language."""
    ctx.heartbeat(progress=progress, message=msg)
    ctx.save_checkpoint(msg=msg.to_json(), progress=progress)


# ----------------------------------------------------------------------------- handlers


def run_demo_job(ctx: JobContext) -> dict:
    seed = int(ctx.params.get("seed", DEMO_SEED))
    posts = max(1, min(int(ctx.params.get("posts", DEMO_POSTS)), MAX_DEMO_POSTS))
    _say(ctx, Msg("data.job_generating", {"posts": posts}), 0.0)
    total = [0]

    def on_batch(report: ImportReport, rows: int) -> None:
        ctx.check_cancelled()
        if total[0]:
            _say(ctx, Msg("data.job_demo_progress", {"rows": rows, "total": total[0]}),
                 0.1 + 0.9 * min(1.0, rows / total[0]))

    def counted(records: list) -> list:
        total[0] = len(records)
        _say(ctx, Msg("data.job_demo_progress", {"rows": 0, "total": total[0]}), 0.1)
        return records

    report = generate_demo_corpus(ctx.db, seed=seed, posts=posts, on_batch=on_batch, on_records=counted)
    return _finish(ctx, report, {"what": "demo", "name": "", "seed": seed, "posts": posts})


class _Counting(io.RawIOBase):
    """A file read through this counts its bytes, for the progress bar."""

    def __init__(self, raw: IO[bytes], name: str):
        self._raw, self.name, self.read_bytes = raw, name, 0
        self.size = os.fstat(raw.fileno()).st_size

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def readinto(self, buf) -> int:
        data = self._raw.read(len(buf))
        buf[:len(data)] = data
        self.read_bytes += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.read_bytes += len(data)
        return data


def run_import_job(ctx: JobContext) -> dict:
    path = Path(str(ctx.params["path"]))
    name = str(ctx.params.get("name") or path.name)
    source = str(ctx.params.get("source") or "import")
    if not path.is_file():
        report = ImportReport(source=source)
        report.add_error(0, error_msg("upload_missing", name=path.name))
        return _finish(ctx, report, {"what": "import", "name": name})
    _say(ctx, Msg("data.job_import_progress", {"name": name, "rows": 0, "percent": 0}), 0.0)
    delete_after = bool(ctx.params.get("delete_after", True))
    try:
        with open(path, "rb") as raw:
            reader = _Counting(raw, name)

            def on_batch(report: ImportReport, rows: int) -> None:
                ctx.check_cancelled()
                share = reader.read_bytes / reader.size if reader.size else 1.0
                _say(ctx, Msg("data.job_import_progress", {"name": name, "rows": rows, "percent": int(share * 100)}),
                     min(1.0, share))

            report = import_file(ctx.db, reader, source=source, on_batch=on_batch,
                                 max_json_bytes=int(ctx.params.get("max_json_bytes") or MAX_JSON_BYTES))
    except JobCancelled:
        if delete_after:  # nobody will read the copy again (a failure keeps it for the retry)
            path.unlink(missing_ok=True)
        raise
    if delete_after:
        path.unlink(missing_ok=True)
    return _finish(ctx, report, {"what": "import", "name": name})


def _finish(ctx: JobContext, report: ImportReport, what: dict) -> dict:
    _say(ctx, Msg("data.job_done", {"imported": report.imported, "updated": report.updated,
                                    "skipped": report.skipped, "errors": report.error_count}), 1.0)
    ctx.log.info("data job {}: {}", what.get("what"), report.summary())
    return {**what, "report": report.as_dict(messages=True)}


def register(handlers) -> None:
    """Add the data jobs to a HandlerRegistry (core.runtime.build_handlers)."""
    handlers.register(DEMO_KIND, run_demo_job)
    handlers.register(IMPORT_KIND, run_import_job)


# ----------------------------------------------------------------------------- starting them


def start_demo_data(supervisor, settings, *, seed: int = DEMO_SEED, posts: int = DEMO_POSTS) -> str:
    """Generate and import the demo corpus on the job pool; returns the run id at once."""
    posts = max(1, min(int(posts), MAX_DEMO_POSTS))
    job = JobSpec(kind=DEMO_KIND, name="demo", params={"seed": int(seed), "posts": posts})
    return supervisor.submit_run([job], kind=RUN_KIND, topic="demo", params={"what": "demo"}, settings=settings)


def start_import(supervisor, settings, path: str | os.PathLike[str], *, name: str | None = None,
                 source: str = "import", delete_after: bool = True) -> str:
    """Import a file on this server's disk (CSV, JSONL or JSON) on the job pool; returns the run id at
    once. `name`: the name the user knows it by (the upload's), which also picks the format; with
    `delete_after` the job deletes the file once read (an upload's copy)."""
    path = Path(path).resolve()
    shown = name or path.name
    job = JobSpec(kind=IMPORT_KIND, name="import", params={
        "path": str(path), "name": shown, "source": source, "delete_after": bool(delete_after),
        "max_json_bytes": MAX_JSON_BYTES})
    return supervisor.submit_run([job], kind=RUN_KIND, topic=shown[:200], params={"what": "import"},
                                 settings=settings)


_UNSAFE = re.compile(r"[^\w.\-]+")


def upload_dir(settings) -> Path:
    return Path(settings.data_dir) / UPLOAD_DIR


def save_upload(fileobj: IO[bytes], settings, name: str) -> Path:
    """Copy an upload to a new file under the data folder, COPY_CHUNK bytes at a time; returns its path.
    The name keeps the upload's extension (it picks the format)."""
    folder = upload_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    safe = _UNSAFE.sub("_", Path(name or "upload").name)[-80:] or "upload"
    target = folder / f"{uuid.uuid4().hex[:12]}-{safe}"
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    tmp = target.with_name(target.name + ".part")
    with open(tmp, "wb") as out:
        shutil.copyfileobj(fileobj, out, COPY_CHUNK)
    os.replace(tmp, target)
    return target


# ----------------------------------------------------------------------------- reading them back


def latest_data_run(db) -> RunView | None:
    runs = list_runs(db, limit=1, kind=RUN_KIND)
    return runs[0] if runs else None


def data_job(db, run_id: str):
    """The run's job (a JobView: status, progress, checkpoint with the Msg, result), or None."""
    jobs = [j for j in jobs_of(db, run_id) if j.kind in KINDS]
    return jobs[-1] if jobs else None


@dataclass(frozen=True)
class DataJobResult:
    """What a data job came to: demo data or an import (of `name`), and its ImportReport."""

    what: str  # demo | import
    name: str
    report: ImportReport

    @classmethod
    def of(cls, job) -> "DataJobResult | None":
        """The typed result of a finished data job (stored as JSON by `_finish`), or None."""
        result = job.result if job is not None else None
        if not isinstance(result, dict) or not isinstance(result.get("report"), dict):
            return None
        return cls(str(result.get("what") or ""), str(result.get("name") or ""),
                   ImportReport.from_dict(result["report"]))


def progress_message(job) -> Msg | str:
    """What the job says now: its last Msg (from the checkpoint), else its stored message."""
    msg = Msg.from_json((job.checkpoint or {}).get("msg")) if job is not None else None
    return msg if msg is not None else (job.message if job is not None else "")


__all__ = ["DEMO_KIND", "IMPORT_KIND", "KINDS", "MAX_JSON_BYTES", "RUN_KIND", "data_job", "latest_data_run",
           "progress_message", "register", "DataJobResult", "run_demo_job", "run_import_job", "save_upload", "start_demo_data",
           "start_import", "upload_dir"]
