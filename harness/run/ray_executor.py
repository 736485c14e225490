"""``--executor ray``: cases on long-lived Ray actors, on a local Ray or an existing cluster.

One actor per worker slot (``--workers N`` of them per resource shape), each holding the run's
:class:`~harness.run.job.CaseJob`: its :class:`~harness.run.cache.StageCache` and, in the
actor's process, every backend's loaded weights (the model loaders are process-wide caches),
so weights load once per actor, not once per case.  The driver keeps one case in flight per
actor and yields each :class:`~harness.run.case.CaseOutput` as it lands (``ray.wait``).

Like the local pool (:mod:`harness.run.workers`), one case cannot take the run down:

* an actor that dies mid-case (segfault, ``os._exit``, the OOM killer, a lost node): the case is
  retried once on a fresh actor, then it is that case's ``error``; the other cases never notice;
* a case past ``timeout`` seconds: its actor is killed (``ray.kill``) and the case is an ``error``
  naming the stage it was in (the actor is threaded so the driver can ask); a fresh actor takes
  the remaining cases.

Resources: a case whose pipeline has a stage running on a GPU (a backend with ``run_device`` whose
``device`` is ``cuda``, or ``auto`` on a cluster with GPUs: :func:`gpu_stage`) runs on an actor with
``num_gpus`` (``gpus_per_actor``, default 1; ``HARNESS_RAY_GPUS_PER_ACTOR=0.5`` puts two actors on
one GPU); every other case on an actor with ``num_cpus=1``.  An idle actor whose kind of case has
run out is released, so its resources go to the other kind.

Where: ``address`` (``--ray-address``, else ``RAY_ADDRESS``) names an existing cluster
(``HOST:6379`` from a node of it, ``ray://HOST:10001`` through Ray Client, which needs
``ray[client]``); without one a local Ray starts with ``num_cpus = workers`` and no dashboard, and
stops when the run ends.  A Ray already initialised in this process is used as it is.

Stage images: on a local Ray the actors write them into the run folder as a local worker does.
On a cluster a worker may not see the driver's disk, so the actor runs the case in a private
temporary folder and returns the PNG bytes of each stage image (``{stage: bytes}``) beside the
output; the driver puts them where they belong: into ``put_png`` (the run's image store,
``bytes -> "sha256:..."``) when set, else at the same relative path in its run folder.
``ship_images`` (``HARNESS_RAY_SHIP_IMAGES=0|1``) overrides the choice: 0 for a cluster whose
nodes share the run folder's file system.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from harness.run.case import CaseOutput
from harness.run.ray_actor import CaseActor, Shape, case_shapes
from harness.run.ray_setup import connect, env_flag, env_number, ray_address, require_ray

if TYPE_CHECKING:
    from harness.run.job import CaseJob
    from harness.suite.suites import Case

__all__ = ["RayExecutor", "require_ray", "ray_address"]  # the last two re-exported from ray_setup

_STARTUP_TIMEOUT = 300.0  # an actor not ready by then (no node has its resources, a broken image) failed to start
_MAX_START_FAILURES = 3  # consecutive failures to start an actor of one shape: its remaining cases error
_TICK = 1.0  # the longest wait in one round
# Waiting is polled from Python: a signal handler that raises inside a blocking ray.wait / ray.get
# comes out as a plain KeyboardInterrupt (Ray turns it into an "interrupted" status), and the run's
# own RunInterrupted (exit 130 / 143 and the partial report's note) would be lost.
_POLL = 0.02


def _lost(case: Case, error: str) -> CaseOutput:
    return CaseOutput(case.id, None, {}, {}, {}, {"pipeline": case.pipeline.as_dict(), "seed": case.seed}, error)


class RayExecutor:
    """``--executor ray`` (see the module doc).  ``workers``: actors per resource shape, and the
    CPUs of a local Ray; ``timeout``: seconds one case may run (None: no limit); ``address``: an
    existing cluster (default ``RAY_ADDRESS``); ``put_png``: where shipped stage images go (the run's
    image store); ``say``: where retries and replaced actors are reported (the runner sets it)."""

    name = "ray"

    def __init__(self, workers: int, timeout: float | None = None, address: str | None = None, *,
                 put_png: Callable[[bytes], str] | None = None, ship_images: bool | None = None,
                 gpus_per_actor: float | None = None) -> None:
        self.ray = require_ray()  # fails before anything is written
        self.workers = workers
        self.timeout = timeout
        self.address = ray_address(address)
        self.put_png = put_png
        ship = env_flag("HARNESS_RAY_SHIP_IMAGES") if ship_images is None else ship_images
        self.ship_images = ship
        gpus = gpus_per_actor if gpus_per_actor is not None else env_number("HARNESS_RAY_GPUS_PER_ACTOR", 1.0)
        self.gpus_per_actor = gpus
        self.say: Callable[[str], None] = lambda s: None
        self.on_dispatch: Callable[[Case], None] = lambda case: None  # each case an actor starts
        self.actor_stats: list[dict[str, Any]] = []  # {"pid", "cases", "ended"} of each actor of the last run

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        if not cases:
            return
        owned = connect(self.ray, self.address, self.workers, self.say)
        ship = self.ship_images if self.ship_images is not None else bool(self.address)
        sched = None
        try:
            sched = _Schedule(self, job, cases, ship)
            yield from sched.outputs()
        finally:
            if sched is not None:
                self.actor_stats = sched.close()
                ran = sum(s["cases"] for s in self.actor_stats)
                self.say(f"ray: {len(self.actor_stats)} actors ran {ran} cases")
            if owned:
                self.ray.shutdown()

    def land(self, out: CaseOutput, images: dict[str, bytes], run_dir: Path) -> None:
        """Put shipped stage images where the driver keeps them; ``out.artifacts`` then names them."""
        from harness.fsio import atomic_write_bytes

        for stage, data in images.items():
            if self.put_png is not None:
                out.artifacts[stage] = self.put_png(data)
                continue
            rel = out.artifacts[stage]
            if rel.startswith("sha256:"):
                raise RuntimeError(f"stage image {rel} of case {out.case_id} came back from a Ray actor's store: "
                                   f"the executor needs put_png (the run's ImageStore.put_png) to keep it")
            target = (run_dir / rel).resolve()
            if Path(rel).is_absolute() or run_dir.resolve() not in target.parents:
                raise RuntimeError(f"stage image {rel!r} of case {out.case_id} is not inside the run folder")
            atomic_write_bytes(target, data)


@dataclass
class _Slot:
    """One actor and the case it runs."""

    actor: Any
    shape: Shape
    ready_ref: Any
    started: float
    pid: int | None = None
    case: Case | None = None
    crashes: int = 0  # how often this case already crashed an actor
    ref: Any = None  # the in-flight run
    deadline: float | None = None
    reserved: tuple[Case, int] | None = None  # a crashed case, retried on this fresh actor first
    ran: int = 0  # cases it finished


def _death(exc: BaseException) -> str:
    """Why an actor died, in one line, from Ray's message ("The actor is dead because ...")."""
    text = str(exc)
    pid = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.strip().startswith("pid:")), "")
    because = next((ln for ln in text.splitlines() if "The actor is dead because" in ln), "")
    why = because.split("because", 1)[1].split(".")[0].strip() if because else text.splitlines()[0][:200]
    return f"Ray actor{f' (pid {pid})' if pid else ''} died: {why}"


class _Schedule:
    """One :meth:`RayExecutor.run`: queues of cases by actor shape, the actors, and what each runs."""

    def __init__(self, ex: RayExecutor, job: CaseJob, cases: Sequence[Case], ship: bool) -> None:
        ray = ex.ray
        self.ray, self.ex, self.job = ray, ex, job
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        shapes = case_shapes(cases, gpus, ex.gpus_per_actor)
        self.early: list[CaseOutput] = []  # cases no actor can take
        self.queues: dict[Shape, deque[tuple[Case, int]]] = {}  # (case, crashes so far)
        for c in cases:
            shape, why = shapes[c.id]
            if shape[1] > gpus:
                self.early.append(_lost(c, f"stage {why} needs {shape[1]:g} GPU, the Ray cluster has {gpus:g}"))
            else:
                self.queues.setdefault(shape, deque()).append((c, 0))
        self.limits = {s: min(ex.workers, int(gpus // s[1])) if s[1] else ex.workers for s in self.queues}
        self.start_failures = {s: 0 for s in self.queues}
        self.last_start_error = ""
        self.slots: list[_Slot] = []
        self.first_crash: dict[str, str] = {}  # case id -> why its first actor died
        self.stats: list[dict[str, Any]] = []
        self.job_ref = ray.put(job)
        # a local Ray's workers take the driver's cwd and import path, as a local worker process does
        self.setup = None if ex.address else {"cwd": os.getcwd(), "sys_path": list(sys.path)}
        self.ship = ship
        self.actor_cls = ray.remote(CaseActor)

    def outputs(self) -> Iterator[CaseOutput]:
        yield from self.early
        while any(self.queues.values()) or any(s.case is not None or s.reserved for s in self.slots):
            yield from self._round()

    def _round(self) -> list[CaseOutput]:
        """Start and feed actors, wait for the first result, start or deadline, and act on it."""
        self._staff()
        self._dispatch()
        waiting = {s.ref if s.ref is not None else s.ready_ref: s for s in self.slots
                   if s.ref is not None or s.pid is None}
        outs: list[CaseOutput] = []
        if waiting:
            done = self._wait(list(waiting))
            for ref in done:
                s = waiting[ref]
                if s.ref is None:
                    self._on_ready(s)
                else:
                    self._on_result(s, outs)
        self._deadlines(outs)
        self._retire()
        self._give_up(outs)
        self._staff()  # the next cases start before the runner judges and records these
        self._dispatch()
        return outs

    # -- actors
    def _start(self, shape: Shape, reserved: tuple[Case, int] | None = None) -> _Slot:
        cpus, gpus = shape
        actor = self.actor_cls.options(num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_task_retries=0,
                                       max_concurrency=2).remote(self.job_ref, self.setup, self.ship)
        slot = _Slot(actor, shape, actor.ready.remote(), time.monotonic(), reserved=reserved)
        self.slots.append(slot)
        return slot

    def _remove(self, s: _Slot, ended: str = "done") -> None:
        """Kill the slot's actor (if alive) and forget it; a case reserved for it goes back in line.
        ``ended``: why (``done``, ``crashed``, ``timed out``, ``failed to start``), for :attr:`stats`."""
        if s.pid is not None and s.case is None and ended == "done":
            try:  # an idle actor removes its temporary folder first (a busy or broken one is killed as it is)
                self.ray.get(s.actor.stop.remote(), timeout=5.0)
            except Exception:  # noqa: BLE001 - best effort
                pass
        try:
            self.ray.kill(s.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
        if s in self.slots:
            self.slots.remove(s)
        if s.pid is not None:
            self.stats.append({"pid": s.pid, "cases": s.ran, "ended": ended})
        if s.reserved:
            self.queues[s.shape].appendleft(s.reserved)
            s.reserved = None

    def _staff(self) -> None:
        """As many actors of each shape as its cases can use, up to its limit."""
        for shape, queue in self.queues.items():
            if self.start_failures[shape] >= _MAX_START_FAILURES:
                continue
            mine = [s for s in self.slots if s.shape == shape]
            busy = sum(s.case is not None or s.reserved is not None for s in mine)
            for _ in range(min(self.limits[shape], len(queue) + busy) - len(mine)):
                self._start(shape)

    def _dispatch(self) -> None:
        now = time.monotonic()
        for s in self.slots:
            queue = self.queues[s.shape]
            if s.pid is None or s.case is not None or not (s.reserved or queue):
                continue
            case, crashes = s.reserved or queue.popleft()
            s.reserved = None
            s.ref = s.actor.run.remote(case)
            self.ex.on_dispatch(case)
            s.case, s.crashes = case, crashes
            s.deadline = now + self.ex.timeout if self.ex.timeout else None

    def _retire(self) -> None:
        """Release actors with nothing left to do, so their resources go to the other shapes."""
        for s in [s for s in self.slots if s.case is None and not s.reserved and not self.queues[s.shape]]:
            self._remove(s)

    # -- what came back
    def _on_ready(self, s: _Slot) -> None:
        try:
            s.pid = self.ray.get(s.ready_ref)
            self.start_failures[s.shape] = 0
        except Exception as exc:  # noqa: BLE001 - its __init__ raised, or it died starting
            self.start_failures[s.shape] += 1
            self.last_start_error = _death(exc) if "actor" in str(exc).lower() else f"{type(exc).__name__}: {exc}"
            self.ex.say(f"ray: an actor failed to start: {self.last_start_error.splitlines()[0]}")
            self._remove(s, "failed to start")

    def _on_result(self, s: _Slot, outs: list[CaseOutput]) -> None:
        from ray.exceptions import RayActorError

        case, crashes, ref = s.case, s.crashes, s.ref
        s.case, s.ref, s.deadline = None, None, None
        assert case is not None
        try:
            out, images = self.ray.get(ref)
        except RayActorError as exc:
            self._crashed(s, case, crashes, _death(exc), outs)
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a result that does not unpickle: this case's error
            outs.append(_lost(case, f"the case's result could not come back from Ray: "
                                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"))
            return
        s.ran += 1
        self.ex.land(out, images, self.job.run_dir)
        if case.id in self.first_crash:
            out.config = {**(out.config or {}), "retried": f"{self.first_crash[case.id]}; passed on a fresh actor"}
        outs.append(out)

    def _crashed(self, s: _Slot, case: Case, crashes: int, why: str, outs: list[CaseOutput]) -> None:
        """The actor died mid-case: the case is retried once on a fresh actor, then an error."""
        self._remove(s, "crashed")
        if crashes == 0:
            self.first_crash[case.id] = f"{why} in this case"
            self.ex.say(f"retry {case.id}: {why}; running it again on a fresh actor")
            if self.start_failures[s.shape] < _MAX_START_FAILURES:
                self._start(s.shape, reserved=(case, 1))
            else:
                self.queues[s.shape].appendleft((case, 1))
            return
        first = self.first_crash.get(case.id, why)
        outs.append(_lost(case, f"{first}; retried once on a fresh actor: {why} again"))

    def _deadlines(self, outs: list[CaseOutput]) -> None:
        """Kill an actor whose case ran past the timeout, or that did not start in time."""
        now = time.monotonic()
        for s in list(self.slots):
            if s.case is not None and s.deadline is not None and now >= s.deadline:
                if self.ray.wait([s.ref], num_returns=1, timeout=0)[0]:  # it landed just now: next round
                    continue
                doing = self._where(s) or f"case {s.case.id}"
                outs.append(_lost(s.case, f"timed out after {self.ex.timeout:g} s in {doing}; its Ray actor was "
                                          f"killed"))
                s.case = s.ref = None
                self._remove(s, "timed out")
            elif s.pid is None and now - s.started >= _STARTUP_TIMEOUT:
                self.start_failures[s.shape] += 1
                self.last_start_error = f"not ready after {_STARTUP_TIMEOUT:g} s (no node with its resources?)"
                self.ex.say(f"ray: an actor was {self.last_start_error}: killed")
                self._remove(s, "failed to start")

    def _where(self, s: _Slot) -> str:
        """What the actor's case is doing (the threaded actor answers beside its case), "" if it cannot say."""
        try:
            return str(self.ray.get(s.actor.where.remote(), timeout=2.0))
        except Exception:  # noqa: BLE001 - a hang holding the GIL: the case is all we know
            return ""

    def _give_up(self, outs: list[CaseOutput]) -> None:
        """Actors of a shape keep failing to start: its remaining cases error instead of looping."""
        for shape, queue in self.queues.items():
            if self.start_failures[shape] < _MAX_START_FAILURES or not queue:
                continue
            if any(s.shape == shape and s.pid is not None for s in self.slots):
                continue
            for s in [s for s in self.slots if s.shape == shape]:
                self._remove(s)
            reason = (f"Ray actors failed to start {self.start_failures[shape]} times in a row: "
                      f"{self.last_start_error}")
            while queue:
                outs.append(_lost(queue.popleft()[0], reason))

    def _wait(self, refs: list) -> list:
        """The refs that are ready, waiting up to the nearest deadline (see :data:`_POLL`)."""
        end = time.monotonic() + self._wait_for()
        while True:
            done, _ = self.ray.wait(refs, num_returns=1, timeout=0)
            if done or time.monotonic() >= end:
                return done
            time.sleep(_POLL)

    def _wait_for(self) -> float:
        now = time.monotonic()
        ends = [s.deadline for s in self.slots if s.case is not None and s.deadline is not None]
        ends += [s.started + _STARTUP_TIMEOUT for s in self.slots if s.pid is None]
        return max(0.0, min([now + _TICK, *ends]) - now)

    def close(self) -> list[dict[str, Any]]:
        """Kill every actor; each actor's pid, how many cases it finished and how it ended."""
        for s in list(self.slots):
            self._remove(s)
        return self.stats
