"""Executors beyond the local process pool.

``ray``: each case runs as a Ray task (``num_cpus=1``; pass ``--workers`` to cap
concurrency), on a local Ray instance or the cluster named by ``RAY_ADDRESS``.
Results stream back in completion order, so the runner flushes each case as
it lands, exactly as with the local executor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.errors import ConfigError

__all__ = ["run_ray", "require_ray"]


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the 'ray' package (pip install 'ray[default]'); "
                          "or use --executor local --workers N") from None
    return ray


def run_ray(cases, suite, run_dir: Path, cache_dir: Path | None, workers: int) -> Iterator:
    ray = require_ray()
    from harness.pipeline.runner import CaseOutput, StageCache, execute_case

    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def _task(case, suite, run_dir, cache_dir, threads):
        from harness.pipeline.environment import set_threads

        set_threads(threads)
        return execute_case(case, suite, run_dir, StageCache(cache_dir))

    pending = {}
    queue = list(cases)
    limit = max(1, workers)
    while queue or pending:
        while queue and len(pending) < limit:
            c = queue.pop(0)
            pending[_task.remote(c, suite, run_dir, cache_dir, suite.threads)] = c
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            c = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a lost worker is this case's error
                yield CaseOutput(c.id, None, {}, {}, {}, {}, f"ray task failed: {exc}")
