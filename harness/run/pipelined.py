"""The pipelined executor (``--executor pipelined``): stages and measuring in different workers, overlapped.

On a GPU machine the stages of a case (generate, inpaint, upscale: the GPU's work) and its
measuring (spectral and local-contrast slices: the CPU's) need different resources.  Run whole
cases in ``--workers N`` processes and either every worker loads the models onto the one GPU, or
one worker does and the GPU idles while it measures.  Here each case runs in two phases
(:func:`~harness.run.case.run_stages`, :func:`~harness.run.case.finish_case`), each in its own
isolating :class:`~harness.run.workers.WorkerPool`:

* the **stage pool**: one worker per device the suite's stages run on (:func:`stage_workers_for`;
  one for a CPU-only suite), which keeps its models loaded across cases;
* the **measuring pool**: ``--workers N`` processes (on a 16-core, 1-GPU machine: 15);
* a bounded queue between them: a staged case (its final image, its rendering, its stage log, and
  its stage images still to be written: PNG encoding is CPU work, done by the measuring worker,
  ``run_stages(defer_saves=True)``) waits in this process for a free measuring worker, and the stage pool gets its next case only
  while fewer than ``buffer`` staged cases wait (default: one per measuring worker), so images do
  not pile up in memory when measuring is the slower phase (back-pressure).

The parent waits on every worker of both pools at once, so the GPU's next case starts as soon as
its previous one is handed over: wall time ≈ max(Σ stages / stage workers, Σ measuring / N), not
their sum (:func:`bench_overlap` shows it with sleeping stand-ins).  Outputs stream back in
completion order.  Failure semantics are the pool's, per phase: a case that runs past
``--timeout`` *in either phase* has its worker killed and is that case's error (the limit applies
to each phase separately, so a case may take up to twice it in all); a worker that crashes is
replaced and its case retried once, then an error ("... in measuring" when it was the measuring).

Stage workers are not bound to a device: each loads the backends its cases name, on the device
their parameters say; with one GPU (the case this is for) that is one worker holding the models.

It is chosen explicitly (``harness run --executor pipelined``), not automatically: on a CPU-only
suite the one stage worker would serialise the stages that ``--executor local`` spreads over
every worker, and the executor is made before the run knows its devices.

The pools are :class:`WorkerPool` objects driven in parts (:class:`_Pool`: its dispatch, receive,
deadline and replacement steps), so the isolation, the retry and the timeout are the pool's own.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from harness.run.case import CaseOutput, StagedCase, finish_case, run_stages
from harness.run.job import CaseJob
from harness.run.workers import _MAX_START_FAILURES, _STARTUP_TIMEOUT, WorkerPool, _Batch
from harness.suite.suites import Case, Pipeline

__all__ = ["PipelinedExecutor", "StagePhase", "MeasurePhase", "SleepPhase", "stage_workers_for", "bench_overlap",
           "overlap_line"]


@dataclass
class StagePhase:
    """What a stage worker runs: a case's input and stages (:func:`run_stages`), its images saved
    later by the measuring worker.  Returns the staged case, or its final :class:`CaseOutput` when a
    stage failed (nothing to measure)."""

    job: CaseJob

    def setup(self) -> None:
        self.job.setup()

    def __call__(self, case: Case, stage_hook=None, run_dir=None) -> StagedCase | CaseOutput:
        job = self.job
        staged = run_stages(case, job.suite, run_dir or job.run_dir, job.stage_cache(), stage_hook=stage_hook,
                            seeds=job.seeds, input_jitter_seed=job.jitter_seed, defer_saves=True)
        return finish_case(staged) if staged.error is not None else staged


@dataclass
class MeasurePhase:
    """What a measuring worker runs: a staged case's measuring and absolute checks (:func:`finish_case`)."""

    job: CaseJob

    def setup(self) -> None:
        self.job.setup()

    def __call__(self, staged: StagedCase, stage_hook=None, run_dir=None) -> CaseOutput:
        with (stage_hook or nullcontext)("measuring"):  # what a crash or timeout names
            return finish_case(staged, self.job.stage_cache())


@dataclass
class SleepPhase:
    """A stand-in phase that sleeps ``seconds`` per case, like a GPU stage (the stage phase: returns
    the case) or a measuring core (``measure=True``: returns the case's output, timed).  What
    :func:`bench_overlap` and the tests schedule: the figure is about scheduling, not the CPU."""

    seconds: float
    measure: bool = False

    def setup(self) -> None:
        pass

    def __call__(self, case: Case, stage_hook=None, run_dir=None) -> Case | CaseOutput:
        time.sleep(self.seconds)
        if not self.measure:
            return case
        return CaseOutput(case.id, {}, {}, {"measure": self.seconds}, {}, {"seed": case.seed})


class _Pool(WorkerPool):
    """A :class:`WorkerPool` driven from outside: the pipelined executor waits on two pools at once,
    so it does the pool's round (dispatch, wait, receive) itself, in parts."""

    def busy(self, batch: _Batch) -> bool:
        return bool(batch.queue) or any(s.case is not None or s.reserved for s in self.slots)

    def top_up(self, batch: _Batch) -> None:
        """Workers for the queued and running items, up to ``workers`` (a batch that starts empty, or a
        worker that died idle, leaves the pool short)."""
        busy = sum(s.case is not None or s.reserved is not None for s in self.slots)
        while self.start_failures < _MAX_START_FAILURES and len(self.slots) < min(self.workers,
                                                                                 len(batch.queue) + busy):
            self.slots.append(self._start())

    def waitables(self) -> list:
        return [s.conn for s in self.slots] + [s.proc.sentinel for s in self.slots]

    def deadline(self) -> float | None:
        """The nearest moment this pool must look at a worker again (a case's timeout, a slow start)."""
        times = [s.deadline for s in self.slots if s.case is not None and s.deadline is not None]
        times += [s.started + _STARTUP_TIMEOUT for s in self.slots if not s.ready]
        return min(times) if times else None

    def collect(self, ready: set, batch: _Batch) -> list[Any]:
        """What came back (outputs, staged items, the errors of dead or timed-out workers), as
        :meth:`WorkerPool._round` does after its wait."""
        outs: list[Any] = []
        replace = [s for s in self.slots if self._receive(s, ready, batch, outs)]
        self._deadlines(outs, replace)
        self._replace(replace, batch)
        self._give_up_if_stuck(batch, outs)
        return outs


def _wait(pools: Sequence[_Pool]) -> set:
    from multiprocessing.connection import wait

    objects = [w for p in pools for w in p.waitables()]
    deadlines = [d for d in (p.deadline() for p in pools) if d is not None]
    timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
    return set(wait(objects, timeout=timeout if objects else 0.0))


def _measure_lost(item: Any, out: CaseOutput) -> CaseOutput:
    """A measuring worker's timeout or crash (the pool's error output, which has no timings; its
    message names "measuring", which the worker pins): the error with what the stages recorded
    (config, timings, their images saved here)."""
    if out.timings or not isinstance(item, StagedCase):
        return out
    return finish_case(dataclasses.replace(item, error=out.error))


def stage_workers_for(cases: Sequence[Case]) -> int:
    """One stage worker per device the cases' stages run on other than the CPU (at least one)."""
    from harness.run.environment import stage_devices

    return max(1, len([d for d in stage_devices(cases) if d != "cpu"]))


class PipelinedExecutor:
    """Stages in ``stage_workers`` worker(s), measuring in ``workers`` others, overlapped (see the
    module doc).  ``stage_workers``: default one per non-CPU device (:func:`stage_workers_for`);
    ``buffer``: staged cases that may wait for a measuring worker (default ``workers``)."""

    name = "pipelined"

    def __init__(self, workers: int, timeout: float | None = None, stage_workers: int | None = None,
                 buffer: int | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.stage_workers = stage_workers
        self.buffer = buffer or workers
        self.say: Callable[[str], None] = lambda s: None
        self.on_dispatch: Callable[[Case], None] = lambda case: None  # a case's stages start

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        if not cases:
            return
        n = self.stage_workers or stage_workers_for(cases)
        yield from self.run_phases(cases, StagePhase(job), MeasurePhase(job), n)

    def run_phases(self, cases: Sequence[Case], stage_job: Any, measure_job: Any,
                   stage_workers: int = 1) -> Iterator[CaseOutput]:
        """Run ``stage_job`` (case -> staged item, or a final CaseOutput) and then ``measure_job``
        (staged item -> CaseOutput) on every case, overlapped; yield outputs as they complete."""
        if not cases:
            return
        stage = _Pool(stage_workers, self.timeout, stage_job, say=lambda s: self.say(s))
        measure = _Pool(self.workers, self.timeout, measure_job, say=lambda s: self.say(s))
        stage.on_dispatch = self.on_dispatch
        sb, mb = _Batch(cases, None), _Batch([], None)
        finished = False
        try:
            for pool, n in ((stage, min(stage_workers, len(cases))), (measure, min(self.workers, len(cases)))):
                pool.slots.extend(pool._start() for _ in range(n))  # measuring workers start while the stages run
            yield from self._loop(stage, measure, sb, mb)
            finished = True
        finally:
            stage.close(graceful=finished)
            measure.close(graceful=finished)

    def _loop(self, stage: _Pool, measure: _Pool, sb: _Batch, mb: _Batch) -> Iterator[CaseOutput]:
        waiting: dict[str, Any] = {}  # case id -> its staged item, until measured
        while stage.busy(sb) or measure.busy(mb):
            stage.top_up(sb)
            measure.top_up(mb)
            measure._dispatch(mb)  # first: a measuring worker that takes a staged case makes room for the next
            if len(mb.queue) < self.buffer:
                stage._dispatch(sb)
            ready = _wait((stage, measure))
            for out in stage.collect(ready, sb):
                if isinstance(out, CaseOutput):
                    yield out  # a stage failed, or its worker hung or crashed: nothing to measure
                else:
                    waiting[out.id] = out
                    mb.queue.append((out, 0))
            for out in measure.collect(ready, mb):
                yield _measure_lost(waiting.pop(out.case_id, None), out)


def bench_overlap(n: int, gen_s: float, measure_s: float, workers: int = 2) -> dict[str, float]:
    """Wall time of ``n`` cases through the pipelined executor whose stage phase sleeps ``gen_s`` per
    case in one stage worker (a GPU) and whose measuring sleeps ``measure_s`` in ``workers``
    measuring workers, against what it would be without overlap.  Seconds, and ratios:

    * ``generation`` = n·gen_s, ``measuring`` = n·measure_s / workers, ``ideal`` = their max;
    * ``serial_sum`` = generation + measuring: the wall time when measuring waits for generation;
    * ``bound`` = the pipeline's own floor: the first case's generation before any measuring, the last
      case's measuring after all generation;
    * ``ratio`` = wall / serial_sum (≈ max/sum: 0.5 when the two are equal), ``vs_ideal`` = wall / ideal
      (≈ bound / ideal plus the workers' start-up and the hand-over of each case).

    Without overlap ``ratio`` is 1 or more; with it, when generation and measuring take as long, about
    0.5 (0.54-0.58 for 16 to 32 cases on a loaded 2-core machine): ``ratio <= 0.75`` tells the two apart.
    The fork server (:mod:`harness.run.workers`) is started before the clock: once per process, not per run."""
    if n < 1 or workers < 1 or not (gen_s > 0 and measure_s > 0):
        raise ValueError(f"bench_overlap needs n >= 1, workers >= 1 and seconds > 0; got n={n}, workers={workers}, "
                         f"gen_s={gen_s}, measure_s={measure_s}")
    cases = [Case("sleep", Pipeline("bench_overlap", ()), i) for i in range(n)]
    ex = PipelinedExecutor(workers)
    list(ex.run_phases(cases[:1], SleepPhase(0.001), SleepPhase(0.001, measure=True), 1))  # the fork server starts
    t0 = time.perf_counter()
    outs = list(ex.run_phases(cases, SleepPhase(gen_s), SleepPhase(measure_s, measure=True), 1))
    wall = time.perf_counter() - t0
    errors = [o.error for o in outs if o.error]
    if len(outs) != n or errors:
        raise RuntimeError(f"bench_overlap: {len(outs)} of {n} cases came back; errors: {errors[:3]}")
    generation, measuring = n * gen_s, n * measure_s / workers
    ideal = max(generation, measuring)
    bound = max(generation + measure_s, gen_s + measuring)  # the first case's generation, the last one's measuring
    return {"n": n, "workers": workers, "wall": wall, "generation": generation, "measuring": measuring,
            "serial_sum": generation + measuring, "ideal": ideal, "bound": bound,
            "ratio": wall / (generation + measuring), "vs_ideal": wall / ideal}


def overlap_line(r: dict[str, float]) -> str:
    """One line of :func:`bench_overlap`'s figures (what ``python -m harness.run.pipelined`` prints)."""
    return (f"overlap: {r['n']:.0f} cases, generation {r['generation']:.2f} s, measuring {r['measuring']:.2f} s "
            f"({r['workers']:.0f} workers): wall {r['wall']:.2f} s = {r['ratio']:.2f} x their sum, "
            f"{r['vs_ideal']:.2f} x their max (pipeline fill and drain alone: {r['bound'] / r['ideal']:.2f} x)")


def main(argv: Sequence[str]) -> None:
    """``python -m harness.run.pipelined [N GEN_S MEASURE_S WORKERS]``: print :func:`bench_overlap`."""
    a = list(argv) + [None] * 4
    print(overlap_line(bench_overlap(int(a[0] or 16), float(a[1] or 0.25), float(a[2] or 0.5), int(a[3] or 2))))


if __name__ == "__main__":  # the stand-ins must pickle as harness.run.pipelined's, not __main__'s
    import importlib
    import sys

    importlib.import_module("harness.run.pipelined").main(sys.argv[1:])
