"""System metrics: the host and its GPUs, sampled in the background, in the System Metrics tab."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests import fake_nvml
from tests.harness import TrackioServer, run_python, wait_until
from trackio_integrations import TrackioClient
from trackio_integrations.monitoring.system import GpuProbe, SystemSampler


def _samples(sampler: SystemSampler, n: int) -> list[dict[str, Any]]:
    assert sampler.sample() == {}  # the first call sets the probes up and primes the counters
    return [sampler.sample() for _ in range(n)]


def test_gpus_are_sampled_under_trackios_names_through_a_stand_in_for_nvml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nvml = fake_nvml.make(gpus=2, unsupported=frozenset({"nvmlDeviceGetPowerUsage"}))
    first, second, third = _samples(SystemSampler(print, nvml=nvml), 3)
    assert first["gpu/0/utilization"] == 90 and first["gpu/1/utilization"] == 91
    assert first["gpu/1/memory_utilization"] == 41
    assert first["gpu/0/allocated_memory"] == 1.0 and first["gpu/0/total_memory"] == 80.0
    assert first["gpu/1/memory_usage"] == 2 / 80
    assert first["gpu/0/temp"] == 60 and first["gpu/0/power_limit"] == 700.0
    assert first["gpu/0/sm_clock"] == 1980 and first["gpu/0/memory_clock"] == 2619
    assert (first["gpu/0/throttle_thermal"], first["gpu/1/throttle_thermal"]) == (0, 1)
    assert first["gpu/mean_utilization"] == 90.5 and first["gpu/max_temp"] == 61
    assert first["gpu/total_allocated_memory"] == 3.0
    # energy counts from the first sample on, in joules (NVML gives millijoules)
    assert [s["gpu/0/energy_consumed"] for s in (first, second, third)] == [0.0, 5.0, 10.0]
    # A reading the board does not support is absent, and asked once per GPU, not every sample.
    assert not any(k.endswith(("/power", "/power_percent", "total_power")) for k in first)
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 2

    # The names are the ones trackio's own GPU monitor gives the same devices, with its values.
    import trackio.gpu as trackio_gpu

    monkeypatch.setattr(trackio_gpu, "pynvml", fake_nvml.make(gpus=2))
    monkeypatch.setattr(trackio_gpu, "PYNVML_AVAILABLE", True)
    monkeypatch.setattr(trackio_gpu, "_nvml_initialized", True)
    monkeypatch.setattr(trackio_gpu, "_energy_baseline", {})
    theirs = trackio_gpu.collect_gpu_metrics(all_gpus=True)
    (ours,) = _samples(SystemSampler(print, nvml=fake_nvml.make(gpus=2)), 1)
    gpu_names = {k for k in ours if k.startswith("gpu/")}
    assert len(gpu_names) == 2 * 14 + 4
    assert gpu_names <= theirs.keys()
    assert {k: ours[k] for k in gpu_names} == {k: theirs[k] for k in gpu_names}


def test_host_metrics_have_trackios_names() -> None:
    import psutil
    from trackio.cpu import collect_cpu_metrics

    (ours,) = _samples(SystemSampler(print, nvml=fake_nvml.make(fail_init=True)), 1)
    disk, net = psutil.disk_io_counters(), psutil.net_io_counters()
    theirs = collect_cpu_metrics(disk, net, elapsed=1.0, include_static=True)
    assert ours.keys() <= theirs.keys()
    for name in ("cpu/utilization", "cpu/0/utilization", "memory/used", "memory/percent"):
        assert name in ours
    assert 0.0 <= ours["cpu/utilization"] <= 100.0
    assert ours["memory/total"] == pytest.approx(theirs["memory/total"])
    if disk is not None:
        assert ours["disk/read_mb_per_sec"] >= 0.0 and "disk/write_iops" in ours
    if net is not None:
        assert ours["network/recv_mb_per_sec"] >= 0.0
    assert not any(name.startswith("gpu/") for name in ours)


def test_without_nvml_or_a_driver_the_gpu_part_is_absent_and_nothing_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert GpuProbe.open(fake_nvml.make(fail_init=True)) is None
    assert GpuProbe.open(fake_nvml.make(gpus=0)) is None
    assert GpuProbe.open() is None  # the real pynvml where no NVIDIA driver is installed
    monkeypatch.setitem(sys.modules, "pynvml", None)  # pynvml not installed: import fails
    assert GpuProbe.open() is None
    (sample,) = _samples(SystemSampler(print), 1)
    assert "cpu/utilization" in sample and not any(k.startswith("gpu/") for k in sample)


def test_psutil_and_nvml_load_on_the_samplers_thread_and_not_at_all_for_a_short_run() -> None:
    # Loading them costs ~40 ms of CPU: never on the thread that opens the run, and not at all
    # for a run over before the sampler settles (a smoke test, a script failing at once).
    code = (
        "import sys, threading, time\n"
        "loaded = {}\n"
        "class Watch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('psutil', 'pynvml'):\n"
        "            loaded.setdefault(name, threading.current_thread().name)\n"
        "sys.meta_path.insert(0, Watch())\n"
        "from trackio_integrations import TrackioClient\n"
        "with TrackioClient('sampler-imports', provenance=False) as run:\n"
        "    run.log({'loss': 1.0}, step=0)\n"
        "print(sorted(loaded))\n"
        "run = TrackioClient('sampler-imports', provenance=False, system_interval=0.1)\n"
        "deadline = time.monotonic() + 60\n"
        "while run._sampler.samples < 1 and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "run.finish()\n"
        "print(sorted(set(loaded.values())), run._sampler.samples >= 1)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    short, long = result.stdout.strip().splitlines()
    assert short == "[]"
    assert long == "['trackio-integrations-system'] True"


def test_samples_reach_the_server_once_each_and_light_the_system_tab(
    server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.make(gpus=2))
    threads: set[str] = set()
    # only this run's sampler: a run another test left open in this process has its own
    others = {t for t in threading.enumerate() if t.name == "trackio-integrations-system"}
    run = TrackioClient(project, server_url=server.write_url, system_interval=0.2)
    sampler = run._sampler
    assert sampler is not None
    log_system = sampler._log_system

    def recording(metrics: dict[str, Any]) -> None:
        threads.add(threading.current_thread().name)
        log_system(metrics)

    sampler._log_system = recording
    for step in range(5):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
    wait_until(lambda: sampler.samples >= 3, 60)
    assert run.finish(timeout=60)
    assert threads == {"trackio-integrations-system"}  # never the training thread
    # The thread ends once its last sample is taken (finish() waits for it only briefly).
    wait_until(
        lambda: (
            not {t for t in threading.enumerate() if t.name == "trackio-integrations-system"}
            - others
        ),
        30,
    )

    def rows() -> list[dict[str, Any]]:
        return list(server.api("get_system_logs", project, run.name))

    stored = rows()
    assert len(stored) == sampler.samples >= 3
    for row in stored:
        assert 0.0 <= row["cpu/utilization"] <= 100.0 and row["memory/used"] > 0
        assert row["gpu/0/utilization"] == 90 and row["gpu/1/allocated_memory"] == 2.0
    assert server.api("get_tab_availability", project)["system"]
    server.stop()
    server.start()
    assert len(rows()) == len(stored)


def test_samples_reach_the_embedded_default(project: str) -> None:
    with TrackioClient(project, system_interval=0.2) as run:
        assert run._sampler is not None
        wait_until(lambda: run._sampler is not None and run._sampler.samples >= 2, 60)
    viewer = TrackioServer(Path(os.environ["TRACKIO_DIR"]))
    viewer.start()
    try:
        rows = wait_until(lambda: viewer.api("get_system_logs", project, run.name), 30)
        assert len(rows) >= 2 and all("cpu/utilization" in row for row in rows)
    finally:
        viewer.stop()


def test_system_metrics_can_be_switched_off(shared_server: TrackioServer, project: str) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url, system_metrics=False)
    run.log({"loss": 1.0}, step=0)
    assert run._sampler is None
    assert run.finish(timeout=60)
    assert shared_server.api("get_system_logs", project, run.name) == []
    assert not shared_server.api("get_tab_availability", project)["system"]
