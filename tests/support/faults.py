"""Fault-matrix timings: a fault test calls `record(row, seconds, end_state)` once it has seen the
defined end state; when SHOAL_FAULT_TIMINGS names a file (bench/fault_matrix.py sets it), the figure
is appended there as one JSON line, so RELIABILITY.md's "time to end state" comes from the test
that proves the row, not from a separate stopwatch. Without the variable this does nothing."""
from __future__ import annotations

import json
import os
import threading

_lock = threading.Lock()


def record(row: str, seconds: float, end_state: str) -> None:
    path = os.environ.get("SHOAL_FAULT_TIMINGS")
    if not path:
        return
    with _lock, open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"row": row, "seconds": round(seconds, 2), "end_state": end_state},
                            ensure_ascii=False) + "\n")
