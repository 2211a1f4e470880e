"""Incremental reading of a growing log file by byte offset.

Each read costs what was appended since the last one, never the file's size. A file that got
shorter (truncated) or was replaced (rotated: a new inode) is read again from its start. A
partial last line (a writer mid-append) is held back until its newline arrives, so no line is
split, lost or read twice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MAX_READ = 4 * 2**20  # one call reads at most this much; the rest comes on the next call


@dataclass
class LogTail:
    path: Path
    offset: int = 0
    inode: int | None = None
    pending: bytes = b""

    def __post_init__(self):
        self.path = Path(self.path)

    def seek_end(self) -> None:
        """Start from what is written from now on."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        self.offset, self.inode, self.pending = st.st_size, st.st_ino, b""

    def seek_back(self, max_bytes: int) -> None:
        """Start `max_bytes` before the end (a panel's first view shows recent history, not the whole file)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        self.offset, self.inode = max(0, st.st_size - max_bytes), st.st_ino
        self._skip_partial = self.offset > 0

    _skip_partial: bool = False

    def read_lines(self, max_bytes: int = MAX_READ) -> list[str]:
        try:
            st = os.stat(self.path)
        except OSError:
            return []  # not created yet (loguru opens files lazily) or rotated away this instant
        if self.inode is not None and st.st_ino != self.inode or st.st_size < self.offset:
            self.offset, self.pending = 0, b""
        self.inode = st.st_ino
        if st.st_size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(max_bytes)
        self.offset += len(chunk)
        data = self.pending + chunk
        lines = data.split(b"\n")
        self.pending = lines.pop()  # b"" when the chunk ended on a newline
        if self._skip_partial and lines:
            lines, self._skip_partial = lines[1:], False  # we started mid-line
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]
