"""The actor side of ``--executor ray`` (:mod:`harness.run.ray_executor`): what one Ray actor runs,
and which actor (CPU or GPU) a case needs.

Its own module so that the actor class, pickled by reference, is importable on a cluster's nodes
without the driver's scheduler, and so that the executor stays small.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from harness.run.case import CaseOutput
from harness.run.worker import where_in

if TYPE_CHECKING:
    from harness.run.job import CaseJob
    from harness.suite.suites import Case, Pipeline

__all__ = ["CaseActor", "Shape", "CPU_SHAPE", "gpu_stage", "case_shapes"]

Shape = tuple[float, float]  # (num_cpus, num_gpus) of one actor
CPU_SHAPE: Shape = (1.0, 0.0)


class _Doing:
    """What the actor's case thread is doing: the stage pinned by execute_case's hook, else sampled
    from its stack (:func:`~harness.run.worker.where_in`)."""

    def __init__(self) -> None:
        self.pinned: str | None = None
        self.ident: int | None = None

    @contextmanager
    def at(self, text: str) -> Iterator[None]:
        mine = self.pinned is None  # a backend calling another backend: the outer stage it is
        if mine:
            self.pinned = text
        try:
            yield
        finally:
            if mine:
                self.pinned = None

    def now(self) -> str:
        if self.pinned is not None:
            return self.pinned
        frame = sys._current_frames().get(self.ident) if self.ident is not None else None
        return where_in(frame) if frame is not None else ""


class CaseActor:
    """One worker slot on Ray (wrapped by ``ray.remote`` at run time, threaded so that :meth:`where`
    answers while :meth:`run` works).  ``setup``: the driver's cwd and ``sys.path`` (a local Ray
    only); ``ship``: return stage images as PNG bytes instead of writing the run folder.

    Shipping, the actor writes into a private temporary folder of its node: the case's run folder
    (emptied after each case) and, when the job names an image store (``store_dir``), a store of its
    own there, since the driver's may not be on this node; :meth:`stop` removes the folder."""

    def __init__(self, job: CaseJob, setup: dict[str, Any] | None, ship: bool) -> None:
        if setup is not None:
            os.chdir(setup["cwd"])
            sys.path[:] = list(setup["sys_path"]) + [p for p in sys.path if p not in setup["sys_path"]]
        self.tmp = Path(tempfile.mkdtemp(prefix="harness-ray-")) if ship else None
        if self.tmp is not None and getattr(job, "store_dir", None):
            job = dataclasses.replace(job, store_dir=self.tmp / "store")
        job.setup()
        self.job, self.cases = job, 0
        self.doing = _Doing()

    def ready(self) -> int:
        return os.getpid()

    def where(self) -> str:
        return self.doing.now()

    def run(self, case: Case) -> tuple[CaseOutput, dict[str, bytes]]:
        """The case's output and, when shipping, the PNG bytes of its stage images by stage."""
        self.doing.ident, self.cases = threading.get_ident(), self.cases + 1
        if self.tmp is None:
            return self.job(case, stage_hook=self.doing.at), {}
        run_dir = self.tmp / "run"
        try:
            out = self.job(case, stage_hook=self.doing.at, run_dir=run_dir)
            return out, {stage: self._image(value, run_dir).read_bytes() for stage, value in out.artifacts.items()}
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _image(self, value: str, run_dir: Path) -> Path:
        """The file of one ``artifacts`` value: a run-folder path, or a ``sha256:`` reference into the
        actor's own store."""
        if not value.startswith("sha256:"):
            return run_dir / value
        from harness.run.store import resolve_artifact

        path = resolve_artifact(value, run_dir, self.tmp / "store" if self.tmp else None)
        if path is None:
            raise FileNotFoundError(f"stage image {value} is not in the actor's store")
        return path

    def stop(self) -> None:
        """Remove the actor's temporary folder (the driver kills the actor next)."""
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ======================================================================== resources per backend


def _param_default(cls: Any, name: str) -> Any:
    pcls = getattr(cls, "Params", None)
    for f in dataclasses.fields(pcls) if pcls is not None and dataclasses.is_dataclass(pcls) else ():
        if f.name == name and f.default is not dataclasses.MISSING:
            return f.default
    return None


def gpu_stage(pipeline: Pipeline, cluster_gpus: float) -> str | None:
    """The first stage of ``pipeline`` that runs on a GPU, as ``"generate (backend 'sd', device 'cuda')"``;
    None when every stage runs on the CPU.  A backend says where it runs by a ``run_device`` method
    (the diffusers backends); its ``device`` parameter decides without building it (``auto``: a GPU
    when the cluster has one), a backend without that parameter is built and asked.  One that cannot
    be resolved counts as CPU: its case reports why."""
    from harness.run.environment import backend_device
    from harness.stages.base import build_backend, resolve_backend

    for spec in pipeline.stages:
        try:
            cls = resolve_backend(spec.stage, spec.backend)[1]
            if not hasattr(cls, "run_device"):
                continue
            device = dict(spec.params).get("device", _param_default(cls, "device"))
            if device is None:
                device = backend_device(build_backend(spec.stage, spec.backend, dict(spec.params)))
        except Exception:  # noqa: BLE001 - a probe: the case itself reports a bad backend
            continue
        if device == "auto":
            device = "cuda" if cluster_gpus > 0 else "cpu"
        if str(device).startswith("cuda"):
            return f"{spec.stage} (backend {spec.backend!r}, device {device!r})"
    return None


def case_shapes(cases: Sequence[Case], cluster_gpus: float, gpus_per_actor: float) -> dict[str, tuple[Shape, str]]:
    """Each case's actor shape, and the GPU stage that asked for it ("" for a CPU case)."""
    memo: dict[str, tuple[Shape, str]] = {}
    out: dict[str, tuple[Shape, str]] = {}
    for c in cases:
        key = json.dumps(c.pipeline.as_dict(), sort_keys=True, default=str)
        if key not in memo:
            why = gpu_stage(c.pipeline, cluster_gpus)
            memo[key] = ((1.0, gpus_per_actor), why) if why else (CPU_SHAPE, "")
        out[c.id] = memo[key]
    return out
