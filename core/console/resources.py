"""System resources over time: a psutil sampler with bounded history.

The runtime schedules `sample_once` on the console's monitor thread (`schedule_on`); standalone,
`start()` runs a daemon thread of its own ("shoal-resources"). A sample every `interval` seconds goes into a deque of
`history` samples (720 x 5 s = one hour). A sample costs a handful of psutil calls (no
subprocesses, no per-process scans beyond this process), and each value that cannot be read
is None rather than an error. Keys of a sample:

  ts                epoch seconds
  cpu_percent       system CPU use since the previous sample (0-100; None over less than 0.1 s)
  memory_percent    system memory in use (0-100); memory_used_bytes, memory_total_bytes
  disk_percent      use of the file system holding `disk_path`; disk_free_bytes
  net_sent_bps / net_recv_bps   bytes per second since the previous sample (None on the first)
  process_rss_bytes, process_threads, process_cpu_percent   this process
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import psutil

if TYPE_CHECKING:  # pandas is imported inside the functions that build frames: a page (or the runtime)
    import pandas as pd  # that builds none does not load it

SAMPLE_KEYS = ("ts", "cpu_percent", "memory_percent", "memory_used_bytes", "memory_total_bytes", "disk_percent",
               "disk_free_bytes", "net_sent_bps", "net_recv_bps", "process_rss_bytes", "process_threads",
               "process_cpu_percent")


MIN_CPU_WINDOW_S = 0.1  # psutil's advice: CPU percent over less than 0.1 s is noise


def _busy_total(t) -> tuple[float, float]:
    """(busy, total) CPU seconds of a psutil cpu_times(); guest time is already in user/nice."""
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001 - a value that cannot be read is None (containers hide some)
        return None


class ResourceSampler:
    def __init__(self, interval: float = 5.0, history: int = 720, disk_path: str | Path | None = None,
                 clock: Callable[[], float] = time.time):
        self.interval = max(0.01, float(interval))
        self.history = max(1, int(history))
        self.disk_path = str(disk_path) if disk_path is not None else os.getcwd()
        self.clock = clock
        self._samples: deque[dict] = deque(maxlen=self.history)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitor = None  # a core.console.monitoring.Monitor that takes the samples, if any
        self._proc = _safe(psutil.Process)
        self._last_net: tuple[float, int, int] | None = None
        self.last_error = ""
        # CPU is measured between two samples of this sampler (psutil's own interval=None state is per
        # calling thread: primed here and read on the monitor thread it gave 0 or 100 from a window of
        # nothing). A window shorter than MIN_CPU_WINDOW_S gives None, not a noisy figure.
        self._last_cpu: tuple[float, Any] | None = (self.clock(), _safe(psutil.cpu_times))
        if self._proc is not None:
            _safe(lambda: self._proc.cpu_percent(interval=None))

    # ------------------------------------------------------------------ sampling
    def sample_once(self) -> dict:
        """Take one sample now, keep it in the history and return it."""
        now = self.clock()
        s: dict[str, Any] = dict.fromkeys(SAMPLE_KEYS)
        s["ts"] = now
        s["cpu_percent"] = _safe(self._cpu_percent)
        vm = _safe(psutil.virtual_memory)
        if vm is not None:
            s["memory_percent"], s["memory_used_bytes"], s["memory_total_bytes"] = \
                float(vm.percent), int(vm.total - vm.available), int(vm.total)
        du = _safe(lambda: psutil.disk_usage(self.disk_path))
        if du is not None:
            s["disk_percent"], s["disk_free_bytes"] = float(du.percent), int(du.free)
        net = _safe(lambda: psutil.net_io_counters())
        if net is not None:
            if self._last_net is not None and now > self._last_net[0]:
                dt = now - self._last_net[0]
                # Counters can wrap or reset (interface restarted): a negative rate is no rate.
                sent, recv = net.bytes_sent - self._last_net[1], net.bytes_recv - self._last_net[2]
                s["net_sent_bps"] = sent / dt if sent >= 0 else None
                s["net_recv_bps"] = recv / dt if recv >= 0 else None
            self._last_net = (now, net.bytes_sent, net.bytes_recv)
        if self._proc is not None:
            mem = _safe(self._proc.memory_info)
            s["process_rss_bytes"] = int(mem.rss) if mem is not None else None
            s["process_threads"] = _safe(self._proc.num_threads)
            s["process_cpu_percent"] = _safe(lambda: float(self._proc.cpu_percent(interval=None)))
        with self._lock:
            self._samples.append(s)
        return s

    def _cpu_percent(self) -> float | None:
        """System CPU busy share since the previous sample (or construction), over all CPUs."""
        now, times = self.clock(), psutil.cpu_times()
        before = self._last_cpu
        if before is not None and before[1] is not None and now - before[0] < MIN_CPU_WINDOW_S:
            return None  # keep the older start: the next window is long enough
        self._last_cpu = (now, times)
        if before is None or before[1] is None:
            return None
        busy0, total0 = _busy_total(before[1])
        busy1, total1 = _busy_total(times)
        if total1 <= total0:
            return None
        return round(min(100.0, max(0.0, 100.0 * (busy1 - busy0) / (total1 - total0))), 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception as exc:  # noqa: BLE001 - the sampler thread never dies of a bad sample
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self._stop.wait(self.interval):
                return

    # ------------------------------------------------------------------ control
    def start(self) -> "ResourceSampler":
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="shoal-resources", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def schedule_on(self, monitor) -> "ResourceSampler":
        """Let a Monitor take the samples on its thread, instead of a thread of our own."""
        monitor.add("resources", self.interval, self.sample_once, first_after=0)
        self._monitor = monitor
        return self

    @property
    def running(self) -> bool:
        if self._monitor is not None and self._monitor.running:
            return True
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    # ------------------------------------------------------------------ reading
    def samples(self) -> list[dict]:
        """Oldest first, at most `history`."""
        with self._lock:
            return list(self._samples)

    def latest(self) -> dict | None:
        with self._lock:
            return dict(self._samples[-1]) if self._samples else None

    def frame(self) -> pd.DataFrame:
        """The history as a DataFrame with `time` (naive UTC datetime) for charts."""
        import pandas as pd
        frame = pd.DataFrame(self.samples(), columns=list(SAMPLE_KEYS))
        frame.insert(1, "time", pd.to_datetime(frame["ts"], unit="s"))
        return frame
