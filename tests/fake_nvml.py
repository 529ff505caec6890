"""A stand-in for ``pynvml`` (NVIDIA's NVML bindings), for unit tests only: no GPU exists here.

It answers the calls the sampler makes with the types and units NVML uses (bytes, milliwatts,
millijoules, a struct with ``gpu`` and ``memory`` utilisation), and raises ``NVMLError`` for what
a device does not support, as the real bindings do. Every call is counted.
"""

from __future__ import annotations

import types
from collections import Counter
from dataclasses import dataclass
from typing import Any


class NVMLError(Exception):
    pass


@dataclass
class _Rates:
    gpu: int
    memory: int


@dataclass
class _Memory:
    used: int
    total: int
    free: int = 0


def make(gpus: int = 2, unsupported: frozenset[str] = frozenset(), fail_init: bool = False) -> Any:
    """A module object that looks like ``pynvml`` with ``gpus`` devices.

    ``unsupported``: function names that raise ``NVMLError`` (e.g. a board without power readings).
    """
    calls: Counter[str] = Counter()
    module = types.ModuleType("pynvml")

    def api(name: str, fn: Any) -> None:
        def call(*args: Any) -> Any:
            calls[name] += 1
            if name in unsupported:
                raise NVMLError(f"{name}: Not Supported")
            return fn(*args)

        setattr(module, name, call)

    def init() -> None:
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    api("nvmlInit", init)
    api("nvmlShutdown", lambda: None)
    api("nvmlDeviceGetCount", lambda: gpus)
    api("nvmlDeviceGetHandleByIndex", lambda i: ("handle", i))
    api("nvmlDeviceGetUtilizationRates", lambda h: _Rates(gpu=90 + h[1], memory=40 + h[1]))
    api("nvmlDeviceGetMemoryInfo", lambda h: _Memory(used=(h[1] + 1) << 30, total=80 << 30))
    api("nvmlDeviceGetPowerUsage", lambda h: 300_000 + 1000 * h[1])  # milliwatts
    api("nvmlDeviceGetPowerManagementLimit", lambda h: 700_000)
    api("nvmlDeviceGetTemperature", lambda h, sensor: 60 + h[1])
    api("nvmlDeviceGetClockInfo", lambda h, clock: {1: 1980, 2: 2619}[clock])
    energy = {0: 1_000_000, 1: 2_000_000}

    def total_energy(h: Any) -> int:
        energy[h[1]] = energy.get(h[1], 0) + 5_000  # millijoules since the driver loaded
        return energy[h[1]]

    api("nvmlDeviceGetTotalEnergyConsumption", total_energy)
    api("nvmlDeviceGetCurrentClocksEventReasons", lambda h: 0x20 if h[1] == 1 else 0)
    # trackio's own GPU monitor reads these names too: the tests compare both on this stand-in.
    api("nvmlDeviceGetCurrentClocksThrottleReasons", lambda h: 0x20 if h[1] == 1 else 0)
    module.NVML_TEMPERATURE_GPU, module.NVML_CLOCK_SM, module.NVML_CLOCK_MEM = 0, 1, 2  # type: ignore[attr-defined]
    module.nvmlClocksThrottleReasonSwThermalSlowdown = 0x20  # type: ignore[attr-defined]
    module.nvmlClocksThrottleReasonSwPowerCap = 0x04  # type: ignore[attr-defined]
    module.nvmlClocksThrottleReasonHwSlowdown = 0x08  # type: ignore[attr-defined]
    module.nvmlClocksThrottleReasonApplicationsClocksSetting = 0x02  # type: ignore[attr-defined]
    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module
