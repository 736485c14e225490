"""Joining Ray for ``--executor ray`` (:mod:`harness.run.ray_executor`): the package, the cluster's
address, the ``HARNESS_RAY_*`` settings, and ``ray.init`` without losing the run's signal handlers.

Settings (environment):

* ``RAY_ADDRESS`` (or ``--ray-address``): the cluster to join, ``HOST:PORT`` (from one of its
  nodes), ``ray://HOST:PORT`` (Ray Client, needs ``ray[client]``) or ``auto``; unset: a local Ray.
* ``HARNESS_RAY_SHIP_IMAGES=0|1``: actors return stage images as PNG bytes (1, the default on a
  cluster) or write the run folder themselves (0, the default on a local Ray).
* ``HARNESS_RAY_GPUS_PER_ACTOR``: ``num_gpus`` of an actor for a case with a GPU stage (default 1;
  0.5 puts two such actors on one GPU).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from harness.errors import ConfigError

__all__ = ["require_ray", "ray_address", "env_flag", "env_number", "connect"]


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the 'ray' package (pip install 'image-harness[ray]'); "
                          "or use --executor local --workers N") from None
    return ray


def ray_address(address: str | None = None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``; None for a local Ray.  A malformed one
    is a ConfigError before anything runs."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None or address in ("auto", "local"):
        return address
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    return address


def env_number(name: str, default: float) -> float:
    """A number > 0 from the environment (``default`` when unset)."""
    v = os.environ.get(name) or ""
    try:
        x = float(v) if v else default
    except ValueError:
        x = float("nan")
    if not x > 0:
        raise ConfigError(f"{name}={v!r}: expected a number > 0")
    return x


def env_flag(name: str) -> bool | None:
    """``0`` / ``1`` from the environment; None when unset."""
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    if v not in ("0", "1"):
        raise ConfigError(f"{name}={v!r}: expected 0 or 1")
    return v == "1"


@contextmanager
def _keeping_signal_handlers() -> Iterator[None]:
    """Restore SIGINT's and SIGTERM's handlers after the block (main thread only)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in saved.items():
            if h is not None:
                signal.signal(s, h)


def connect(ray: Any, address: str | None, cpus: int, say: Callable[[str], None]) -> bool:
    """Join the cluster at ``address`` or start a local Ray with ``cpus`` CPUs and no dashboard; True
    when this call started (so its caller stops) it.  A Ray already initialised is used as it is."""
    import logging

    if ray.is_initialized():
        return False
    with _keeping_signal_handlers():  # ray.init takes SIGTERM: the run's own handler writes the partial report
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise ConfigError(f"--ray-address {address}: cannot connect: {exc}") from None
    res = ray.cluster_resources()
    say(f"ray: {f'cluster {address}' if address else 'local Ray'}: {res.get('CPU', 0):g} CPUs, "
        f"{res.get('GPU', 0):g} GPUs")
    return True
