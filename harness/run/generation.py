"""The generate stage of a prompt vector: its base image rendered by the pipeline's generating
backend (from the stage cache, else computed, a batch-capable backend rendering its chunk of
seeds at once), then the vector's overlays and anchors drawn on it.  Its own module so that
:mod:`harness.run.case` stays one screenful of stages; the worker's "where is it" sampler
(:func:`harness.run.worker.where_in`) names this function ``stage generate``."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator, Sequence

import numpy as np

from harness.run.batching import cached_stage
from harness.run.cache import StageCache, stage_key
from harness.suite.suites import Case

__all__ = ["generate_base"]


@contextmanager
def _no_hook(where: str) -> Iterator[None]:
    yield


def generate_base(vector, case: Case, cache: StageCache, config: dict, timings: dict, stages: dict,
                   at: Callable[[str], ContextManager[Any]] = _no_hook, chunk: Sequence[int] = (), infos: dict | None = None):
    """Run the pipeline's generate stage on a prompt vector; returns the vector rendered on its output.

    ``chunk``: the seeds (this case's among them) a batch-capable backend renders together on a
    cache miss, each cached under its one-by-one key (:mod:`harness.run.batching`)."""
    from harness.errors import ConfigError
    from harness.run.stage_record import record_identity
    from harness.stages import StageContext, backend_config, build_backend, run_stage
    from harness.suite.vectors import render

    spec = next((s for s in case.pipeline.stages if s.stage == "generate"), None)
    if spec is None or spec.backend == "source":
        example = "face_gan" if vector.source.get("kind") == "generated" else "tiny_diffusion"
        raise ConfigError(f"vector {vector.id!r} has a {vector.source.get('kind')} source: pipeline "
                          f"{case.pipeline.name!r} needs a generating backend in its generate stage "
                          f"(e.g. backend = \"{example}\")")
    with at(f"stage generate (loading backend {spec.backend!r})"):
        backend = build_backend("generate", spec.backend, dict(spec.params))
    bconf = backend_config(backend)
    config["stages"].append(bconf)
    record_identity(config, "generate", backend)
    h, w = vector.size
    placeholder = np.full((h, w, 3), 128, np.uint8)
    prompt, negative = vector.source.get("prompt"), vector.source.get("negative_prompt")

    def key_of(seed: int) -> str:
        return stage_key("generate", bconf, backend, seed, prompt, negative, (h, w))

    def ctx_of(seed: int) -> StageContext:
        return StageContext(seed=seed, prompt=prompt, negative_prompt=negative)

    t0 = time.perf_counter()
    with at(f"stage generate (backend {spec.backend!r})"):
        hit = cached_stage("generate", backend, bconf, cache, case.seed, list(chunk) or [case.seed], key_of,
                           placeholder, ctx_of, config, lambda: run_stage(backend, placeholder, ctx_of(case.seed)))
    timings["generate"] = time.perf_counter() - t0
    if infos is not None:
        infos["generate"] = hit[2]
    for k, v in hit[2].items():
        if isinstance(v, (int, float)):
            stages[f"generate.{k}"] = float(v)
    return render(vector, base=hit[0])
