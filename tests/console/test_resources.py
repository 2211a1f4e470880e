"""The psutil sampler: the values it reports, bounded history, a thread that starts and stops."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import psutil

from core.console.resources import SAMPLE_KEYS, ResourceSampler


def test_a_sample_has_every_value_in_range(tmp_path):
    sampler = ResourceSampler(disk_path=tmp_path)
    first = sampler.sample_once()
    assert set(first) == set(SAMPLE_KEYS)
    assert first["cpu_percent"] is None  # CPU over no interval yet: unknown, not 0 or 100
    assert 0 < first["memory_percent"] <= 100
    assert 0 <= first["disk_percent"] <= 100 and first["disk_free_bytes"] > 0
    assert first["process_rss_bytes"] > 10 * 2**20 and first["process_threads"] >= 1
    assert first["net_sent_bps"] is None  # a rate needs two samples
    assert sampler.latest() == first and sampler.samples() == [first]


def test_network_rates_come_from_counter_differences(monkeypatch):
    now = [1000.0]
    counters = iter([SimpleNamespace(bytes_sent=1_000, bytes_recv=5_000),
                     SimpleNamespace(bytes_sent=3_000, bytes_recv=9_000),
                     SimpleNamespace(bytes_sent=10, bytes_recv=9_500)])  # counters reset: no negative rate
    monkeypatch.setattr(psutil, "net_io_counters", lambda: next(counters))
    sampler = ResourceSampler(clock=lambda: now[0])
    sampler.sample_once()
    now[0] += 2
    s = sampler.sample_once()
    assert s["net_sent_bps"] == 1_000 and s["net_recv_bps"] == 2_000
    now[0] += 1
    s = sampler.sample_once()
    assert s["net_sent_bps"] is None and s["net_recv_bps"] == 500


def test_a_value_psutil_cannot_read_is_none_not_an_error(monkeypatch):
    def boom(*_a, **_k):
        raise PermissionError("hidden in this container")

    monkeypatch.setattr(psutil, "virtual_memory", boom)
    monkeypatch.setattr(psutil, "net_io_counters", lambda: None)
    times = iter([_CpuTimes(10, 90), _CpuTimes(11, 99)])
    monkeypatch.setattr(psutil, "cpu_times", lambda *a, **k: next(times))
    now = [1000.0]
    sampler = ResourceSampler(clock=lambda: now[0])
    now[0] += 1
    s = sampler.sample_once()
    assert s["memory_percent"] is None and s["net_recv_bps"] is None and s["cpu_percent"] == 10.0


class _CpuTimes(tuple):
    """psutil's scputimes shape: a tuple with named fields (sum() adds them all)."""
    def __new__(cls, user, idle, iowait=0.0):
        obj = super().__new__(cls, (user, 0.0, 0.0, idle, iowait))
        obj.user, obj.idle, obj.iowait = user, idle, iowait
        return obj


def test_cpu_is_measured_over_the_interval_between_samples_on_any_thread(monkeypatch):
    now = [1000.0]
    times = iter([_CpuTimes(100, 900), _CpuTimes(100.01, 900.01), _CpuTimes(160, 950, iowait=10),
                  _CpuTimes(160, 1070, iowait=10)])
    monkeypatch.setattr(psutil, "cpu_times", lambda *a, **k: next(times))
    sampler = ResourceSampler(clock=lambda: now[0])  # primed here, on this thread
    now[0] += 0.01
    assert sampler.sample_once()["cpu_percent"] is None  # 10 ms: too short a window to mean anything
    now[0] += 5
    out = {}
    worker = threading.Thread(target=lambda: out.update(sampler.sample_once()))  # as on the monitor thread
    worker.start()
    worker.join()
    assert out["cpu_percent"] == 50.0  # 60 busy of 120 CPU-seconds (iowait is idle)
    now[0] += 5
    assert sampler.sample_once()["cpu_percent"] == 0.0  # idle since: 0, measured, not a stale 100


def test_the_thread_keeps_a_bounded_history_and_stops():
    sampler = ResourceSampler(interval=0.02, history=3).start()
    deadline = time.monotonic() + 10
    while len(sampler.samples()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert len(sampler.samples()) == 3  # bounded: older samples were dropped
    assert any(t.name == "shoal-resources" and t.daemon for t in threading.enumerate())
    sampler.stop()
    assert not sampler.running
    n = sampler.samples()[-1]["ts"]
    time.sleep(0.1)
    assert sampler.samples()[-1]["ts"] == n
    frame = sampler.frame()
    assert len(frame) == 3 and "time" in frame.columns and str(frame["time"].dtype).startswith("datetime64")


def test_an_empty_history():
    sampler = ResourceSampler()
    assert sampler.latest() is None and sampler.samples() == [] and sampler.frame().empty
