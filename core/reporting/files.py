"""Where a report's files go and how they are written (temporary file, then os.replace)."""
from __future__ import annotations

import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Iterable

from loguru import logger

from core.reporting.errors import ReportError

RUN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def slugify(text: str, limit: int = 40) -> str:
    """An ASCII-safe file name stem: letters, digits and dashes (CJK topics give 'report')."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:limit].strip("-")
    return slug or "report"


def reports_dir(settings, run_id: str) -> Path:
    if not RUN_ID_RE.match(run_id or ""):
        raise ReportError(f"unsafe run id {run_id!r}")
    return Path(settings.data_dir) / "reports" / run_id


def output_paths(settings, run_id: str, topic: str, report_id: str) -> dict[str, Path]:
    if not re.fullmatch(r"[A-Za-z0-9]{1,32}", report_id or ""):
        raise ReportError(f"unsafe report id {report_id!r}")
    folder = reports_dir(settings, run_id)
    stem = f"{slugify(topic)}-{report_id}"
    return {"html": folder / f"{stem}.html", "md": folder / f"{stem}.md", "json": folder / f"{stem}.json"}


def write_outputs(contents: dict[Path, str]) -> None:
    """Write every file to a temporary file beside it first, then move all into place.

    A failure while writing leaves every existing file as it was and no temporary file behind."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, text in contents.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            temps.append((tmp, path))
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover - best effort
                logger.warning("could not remove temporary file {}: {}", tmp, exc)


def delete_files(paths: Iterable[str | None], run_id: str) -> None:
    for p in paths:
        if not p:
            continue
        path = Path(p)
        # only files this module wrote: <...>/reports/<run_id>/<name>
        if path.parent.name != run_id or path.parent.parent.name != "reports":
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.warning("could not delete old report file {}: {}", path, exc)
