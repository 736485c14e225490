"""Stand-ins for the pipelined executor's tests (tests/run/test_pipelined.py), importable as
``run.gpu_standins`` (``tests/`` is on sys.path, and workers adopt the parent's sys.path)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np


class SleepyGPU:
    """A denoise backend that sleeps like a GPU stage and says it runs on a device that is not the
    CPU (so :func:`harness.run.pipelined.stage_workers_for` gives it a stage worker); its output is
    its input with one bit flipped, so the stage did something and is deterministic."""

    stage, name = "denoise", "run.gpu_standins:SleepyGPU"

    @dataclass(frozen=True)
    class Params:
        seconds: float = 0.2

    def __init__(self, params):
        self.params = params

    def run_device(self) -> str:
        return "standin-gpu"

    def __call__(self, image, ctx):
        from harness.stages import StageResult

        time.sleep(self.params.seconds)
        out = image.copy()
        out[0, 0, 0] ^= np.uint8(1)
        return StageResult(image=out, info={"slept_s": self.params.seconds})


@dataclass
class Stamped:
    """A stand-in stage phase: sleeps ``seconds``, and writes when each case started into the file
    ``folder``/``<seed>`` (seconds since the epoch), so a test sees how far the stages ran ahead."""

    folder: str
    seconds: float

    def setup(self) -> None:
        pass

    def __call__(self, case, stage_hook=None, run_dir=None):
        with open(os.path.join(self.folder, str(case.seed)), "w") as fh:
            fh.write(repr(time.time()))
        time.sleep(self.seconds)
        return case


@dataclass
class CrashOn:
    """A stand-in measuring phase that kills its worker (SIGKILL) on ``seeds`` and hangs on ``hang``;
    else returns the case's output after ``seconds``."""

    seconds: float = 0.0
    seeds: tuple[int, ...] = ()
    hang: tuple[int, ...] = ()

    def setup(self) -> None:
        pass

    def __call__(self, case, stage_hook=None, run_dir=None):
        import signal

        from harness.run.case import CaseOutput

        if case.seed in self.seeds:
            os.kill(os.getpid(), signal.SIGKILL)
        if case.seed in self.hang:
            time.sleep(3600)
        time.sleep(self.seconds)
        return CaseOutput(case.id, {}, {}, {"measure": self.seconds}, {}, {"seed": case.seed})
