"""System metrics: the host (psutil) and NVIDIA GPUs (nvidia-ml-py), sampled in the background.

A ``SystemSampler`` runs on its own ``Worker`` thread, never on the training thread, and hands
each sample to ``TrackioClient.log_system``, so samples travel through the spool like points
(durable, exactly once). The names are trackio's own (``cpu/utilization``, ``memory/used``,
``gpu/0/utilization``, ...), so the dashboard's System Metrics tab draws them as it draws trackio's.

- No psutil: no host metrics (``pip install 'trackio-integrations[system]'``, which every framework
  extra includes). No ``pynvml`` (``[gpu]``), no driver, or no GPU: no GPU metrics. Neither is an
  error. Both are imported on the sampler's thread, half a second after the start (``SETTLE``):
  the thread that opens the run never pays for them, and a run over before then loads neither.
- Like trackio's GPU monitor, the sampler reports every GPU of the machine (NVML's indices), not
  only those in ``CUDA_VISIBLE_DEVICES``: one sampler describes one node.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from typing import Any

from trackio_integrations.core.worker import Worker

logger = logging.getLogger("trackio_integrations")

DEFAULT_INTERVAL = 10.0
# psutil and NVML cost ~40 ms of CPU to load (more to initialise a driver): a run shorter than
# SETTLE seconds (a smoke test, a script that fails at once) has nothing to show for them.
SETTLE = 0.5  # seconds after the start: load, then prime the counters (rates need an interval)
FIRST_SAMPLE = 1.0  # seconds after the start: the first sample, over the half second since
_GIB, _MIB = float(1 << 30), float(1 << 20)
# NVML's clock-event reason bits (stable ABI values; the Python names changed across versions).
_THERMAL = 0x20 | 0x40  # software and hardware thermal slowdown
_POWER = 0x04 | 0x80  # software power cap and hardware power brake


class SystemSampler:
    """Samples the host and its GPUs every ``interval`` seconds into ``log_system``.

    >>> sampler = SystemSampler(run.log_system, interval=10.0).start()  # doctest: +SKIP
    >>> sampler.stop(timeout=1.0)  # one last sample, then the thread ends

    Args:
        log_system: where each sample goes (``TrackioClient.log_system``).
        interval: seconds between samples; the counters are primed ``SETTLE`` s after the start,
            the first sample comes ``FIRST_SAMPLE`` s after the start (sooner for a shorter
            ``interval``).
        prefix: put before every name, e.g. ``"node1/"`` for the second node of a job.
        nvml: a module to use instead of ``pynvml`` (unit tests stand one in for the driver).
    """

    def __init__(
        self,
        log_system: Callable[[dict[str, Any]], None],
        interval: float = DEFAULT_INTERVAL,
        prefix: str = "",
        nvml: Any = None,
    ) -> None:
        self.interval = max(float(interval), 0.05)
        self.prefix = prefix
        self.samples = 0
        self.cpu_seconds = 0.0  # CPU time this sampler's thread spent sampling
        self._log_system = log_system
        self._nvml = nvml
        self._psutil: Any = None
        self._loaded = False
        self._probes: list[HostProbe | GpuProbe] | None = None
        self._worker = Worker("trackio-integrations-system", self._cycle, first=SETTLE)

    def start(self) -> SystemSampler:
        """Start the thread; psutil and NVML load there, ``SETTLE`` s later, never here."""
        self._worker.ensure_started()
        return self

    def stop(self, timeout: float) -> bool:
        """Take one last sample (if one was due to come at all) and end the thread."""
        return self._worker.stop(timeout)

    def sample(self) -> dict[str, Any]:
        """One sample now, on the calling thread (the first call only sets the probes up)."""
        if self._probes is None:
            self._probes = self._open_probes()
            return {}
        metrics: dict[str, Any] = {}
        for probe in self._probes:
            metrics.update(probe.sample())
        if self.prefix:
            metrics = {self.prefix + name: value for name, value in metrics.items()}
        return metrics

    def _cycle(self, final: bool) -> float:
        if final and self._probes is None:
            return 0.0  # stopped before the first sample was even due: nothing to measure
        started = time.thread_time()
        primed = self._probes is not None
        metrics = self.sample()
        self.cpu_seconds += time.thread_time() - started
        if metrics:
            self.samples += 1
            self._log_system(metrics)
        if not self._probes:
            return 3600.0  # nothing to measure here; wake only to stop
        return self.interval if primed else min(self.interval, FIRST_SAMPLE - SETTLE)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            self._psutil = importlib.import_module("psutil")
        except ImportError:
            logger.info(
                "trackio-integrations: no host metrics without psutil "
                "(pip install 'trackio-integrations[system]')"
            )
        if self._nvml is None:
            with contextlib.suppress(ImportError):  # no nvidia-ml-py: no GPU metrics, silently
                self._nvml = importlib.import_module("pynvml")

    def _open_probes(self) -> list[HostProbe | GpuProbe]:
        self._load()
        probes: list[HostProbe | GpuProbe] = []
        if self._psutil is not None:
            try:
                probes.append(HostProbe(self._psutil))
            except Exception:
                logger.debug("trackio-integrations: psutil failed", exc_info=True)
        gpus = GpuProbe.open(self._nvml) if self._nvml is not None else None
        if gpus is not None:
            probes.append(gpus)
        return probes


class HostProbe:
    """CPU, memory, swap, disk and network through psutil; rates over the time between samples.

    Not trackio's one-off ``cpu/count_*`` and ``cpu/frequency``: a constant drawn as a chart of
    one point says little, and the frequency is slow to read on machines with many cores.

    CPU use is computed from ``cpu_times`` differences of our own, not ``psutil.cpu_percent``,
    whose module-wide state another caller in the process would disturb.
    """

    def __init__(self, psutil: Any) -> None:
        self.ps = psutil
        self._then, self._cpu, self._disk, self._net = self._counters()

    def _counters(self) -> tuple[float, Any, Any, Any]:
        return (
            time.monotonic(),
            _quiet(self.ps.cpu_times, percpu=True),
            _quiet(self.ps.disk_io_counters),
            _quiet(self.ps.net_io_counters),
        )

    def sample(self) -> dict[str, Any]:
        now, cpu, disk, net = self._counters()
        elapsed = now - self._then
        metrics: dict[str, Any] = {}
        if cpu and self._cpu and len(cpu) == len(self._cpu):
            per_core = [_busy_percent(old, new) for old, new in zip(self._cpu, cpu, strict=True)]
            for i, value in enumerate(per_core):
                metrics[f"cpu/{i}/utilization"] = value
            metrics["cpu/utilization"] = sum(per_core) / len(per_core)
        memory = _quiet(self.ps.virtual_memory)
        if memory is not None:
            metrics["memory/used"] = memory.used / _GIB
            metrics["memory/total"] = memory.total / _GIB
            metrics["memory/available"] = memory.available / _GIB
            metrics["memory/percent"] = memory.percent
        swap = _quiet(self.ps.swap_memory)
        if swap is not None:
            metrics["swap/used"] = swap.used / _GIB
            metrics["swap/total"] = swap.total / _GIB
            metrics["swap/percent"] = swap.percent
        if elapsed > 0 and disk is not None and self._disk is not None:
            metrics["disk/read_mb_per_sec"] = (
                (disk.read_bytes - self._disk.read_bytes) / elapsed / _MIB
            )
            metrics["disk/write_mb_per_sec"] = (
                (disk.write_bytes - self._disk.write_bytes) / elapsed / _MIB
            )
            metrics["disk/read_iops"] = (disk.read_count - self._disk.read_count) / elapsed
            metrics["disk/write_iops"] = (disk.write_count - self._disk.write_count) / elapsed
        if elapsed > 0 and net is not None and self._net is not None:
            metrics["network/sent_mb_per_sec"] = (
                (net.bytes_sent - self._net.bytes_sent) / elapsed / _MIB
            )
            metrics["network/recv_mb_per_sec"] = (
                (net.bytes_recv - self._net.bytes_recv) / elapsed / _MIB
            )
        self._then, self._cpu, self._disk, self._net = now, cpu, disk, net
        return metrics


class GpuProbe:
    """Every NVIDIA GPU of the machine through NVML, named ``gpu/<NVML index>/...``.

    A query a device does not support (fans on a data-centre card, power on some boards) fails
    once and is not asked again, so a sample costs only the calls that can answer.
    """

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles
        self._unsupported: set[tuple[Any, ...]] = set()
        self._energy0: dict[int, float] = {}

    @classmethod
    def open(cls, nvml: Any = None) -> GpuProbe | None:
        """The probe, or None where there is no pynvml, no driver or no GPU (silently)."""
        try:
            nvml = nvml if nvml is not None else importlib.import_module("pynvml")
            nvml.nvmlInit()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception:  # ImportError, NVMLError (no driver, no device), anything else
            logger.debug("trackio-integrations: no NVIDIA GPU metrics", exc_info=True)
            return None
        return cls(nvml, handles) if handles else None

    def _ask(self, index: int, function: str, *args: Any) -> Any:
        """``nvml.<function>(handle, *args)`` for GPU ``index``, or None where it cannot answer."""
        key = (index, function, *args)
        if key in self._unsupported:
            return None
        try:
            if function == "clock_event_reasons":
                return _clock_event_reasons(self.nvml, self.handles[index])
            return getattr(self.nvml, function)(self.handles[index], *args)
        except Exception:
            self._unsupported.add(key)
            return None

    def sample(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        utilization: list[float] = []
        temps: list[float] = []
        memory = power = 0.0
        for i in range(len(self.handles)):
            p = f"gpu/{i}/"
            rates = self._ask(i, "nvmlDeviceGetUtilizationRates")
            if rates is not None:
                metrics[p + "utilization"] = rates.gpu
                metrics[p + "memory_utilization"] = rates.memory
                utilization.append(rates.gpu)
            info = self._ask(i, "nvmlDeviceGetMemoryInfo")
            if info is not None:
                metrics[p + "allocated_memory"] = info.used / _GIB
                metrics[p + "total_memory"] = info.total / _GIB
                if info.total:
                    metrics[p + "memory_usage"] = info.used / info.total
                memory += info.used / _GIB
            watts = self._ask(i, "nvmlDeviceGetPowerUsage")
            if watts is not None:
                metrics[p + "power"] = watts / 1000.0
                power += watts / 1000.0
            limit = self._ask(i, "nvmlDeviceGetPowerManagementLimit")
            if limit:
                metrics[p + "power_limit"] = limit / 1000.0
                if watts is not None:
                    metrics[p + "power_percent"] = watts / limit * 100.0
            # NVML_TEMPERATURE_GPU = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2
            temp = self._ask(i, "nvmlDeviceGetTemperature", 0)
            if temp is not None:
                metrics[p + "temp"] = temp
                temps.append(temp)
            sm = self._ask(i, "nvmlDeviceGetClockInfo", 1)
            if sm is not None:
                metrics[p + "sm_clock"] = sm
            mem_clock = self._ask(i, "nvmlDeviceGetClockInfo", 2)
            if mem_clock is not None:
                metrics[p + "memory_clock"] = mem_clock
            energy = self._ask(i, "nvmlDeviceGetTotalEnergyConsumption")
            if energy is not None:
                start = self._energy0.setdefault(i, energy)
                metrics[p + "energy_consumed"] = (energy - start) / 1000.0  # mJ -> J
            reasons = self._ask(i, "clock_event_reasons")
            if reasons is not None:
                metrics[p + "throttle_thermal"] = int(bool(reasons & _THERMAL))
                metrics[p + "throttle_power"] = int(bool(reasons & _POWER))
        if utilization:
            metrics["gpu/mean_utilization"] = sum(utilization) / len(utilization)
        if memory:
            metrics["gpu/total_allocated_memory"] = memory
        if power:
            metrics["gpu/total_power"] = power
        if temps:
            metrics["gpu/max_temp"] = max(temps)
        return metrics


def _clock_event_reasons(nv: Any, handle: Any) -> int:
    call = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
    call = call or nv.nvmlDeviceGetCurrentClocksThrottleReasons  # before nvidia-ml-py 12.535
    return int(call(handle))


def _busy_percent(old: Any, new: Any) -> float:
    """CPU use of one core between two ``cpu_times`` samples, as ``psutil.cpu_percent`` counts it."""

    def total_and_idle(t: Any) -> tuple[float, float]:
        total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
        return total, t.idle + getattr(t, "iowait", 0.0)

    total0, idle0 = total_and_idle(old)
    total1, idle1 = total_and_idle(new)
    span = total1 - total0
    if span <= 0:
        return 0.0
    return min(max((span - (idle1 - idle0)) / span * 100.0, 0.0), 100.0)


def _quiet(call: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except Exception:
        return None
