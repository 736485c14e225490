"""The case memo: a whole recorded case, kept by everything that decides it, replayed on the driver.

A fully cached case still costs a worker round trip (building backends, keying and loading every
stage, the measurement) and judging (thousands of checks ranked and written).  When nothing that
decides the recorded case changed, the memo copies what the case recorded last time into the new
run folder instead: no worker, no judging.

**Key** (:meth:`CaseMemo.key`): sha256 of :data:`MEMO_SCHEMA` and

* the run: the digest of every ``.py`` file of harness (the stages, measuring, comparing and
  judging code, :func:`~harness.run.identity.harness_code_digest`), the measuring identity
  (:func:`~harness.run.identity.measure_identity`: numeric libraries, machine, threads), the run
  environment's parts that change bits or the drift notes (Python, platform, machine, device,
  threads configured and applied, package versions), the suite's measuring and batching settings,
  its compare config (tolerances and rules), the suite's name and path (they appear in messages),
  the project's python path, the device ``auto`` resolved to and the image store's folder;
* the case: its id, the vector's content digest (its file and asset), the pipeline as written,
  per stage the backend's resolved config and :func:`~harness.run.identity.stage_identity` (code
  and weights exactly as the stage cache keys them), the seed and its batch of seeds, and the
  baseline file's sha256 with the sha256 its manifest lists for it (and whether a bake left it
  pending), so a re-bake, a hand edit or a manifest that no longer vouches for it is a miss.

The key is computed before the case runs and again after it is judged; the case is kept only
when both agree (a file edited mid-run is never kept under the old key).

**Kept**: only paired-mode, judged cases that passed or failed (never an error: it may be a
timeout or a crash), were not retried, and whose stage images are all in the image store.  A
suite with ``rerun_check`` is never memo'd (its determinism check must run).

**Entries** live beside the stage cache in ``<cache dir>/memo/<key>.memo``: the case's checks
part, measurement file and case record as written, the drift of its baseline's environment and
the run it came from, with a sha256 of all of it.  A read re-computes it; a torn, garbled or
mismatched entry is deleted and the case runs (a miss, never an error, never a pass).  Writes
are atomic renames, not fsync'ed (two runs writing one key both leave a valid entry; one torn by
a power cut fails its checksum).  The folder is bounded like the
measurement cache: an eighth of ``cache_max_mb``, least recently used first.

**A hit** is recorded in the new run folder with ``config.memo`` naming the run it came from,
``config.memo_timings`` the timings it recorded there, and ``timings`` only what the replay took
(``{"memo": s}``): no work is claimed that was not done.  The run's progress output counts the hits.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from harness.run.cache import evict_lru, read_entry, touch
from harness.run.identity import STATS
from harness.run.memo_entry import MEMO_SCHEMA, Hit, pack, unpack

if TYPE_CHECKING:
    from harness.report.schema import CaseResult
    from harness.suite.suites import Case

__all__ = ["CaseMemo", "Hit", "MEMO_SCHEMA", "SUFFIX", "pack", "unpack", "replay"]

SUFFIX = ".memo"
DIGESTS_FILE = "digests.json"  # harness.run.digest_memo: file digests kept across processes
_SHARE = 8  # beside a stage cache, memo entries may take an eighth of its bound
_EVICT_EVERY = 64
_ENV_KEYS = ("python", "platform", "machine", "device", "threads", "threads_applied", "versions")


class CaseMemo:
    """Recorded cases by key (see the module docstring), for one run; made by :meth:`open`."""

    def __init__(self, directory: Path, max_bytes: int, run_parts: dict[str, Any], plan: Any, job: Any,
                 environment: dict[str, Any] | None = None) -> None:
        self.directory = directory
        self.environment = environment or {}  # the run's, as its cases are judged against (drift)
        self.max_bytes = max_bytes
        self.run_parts = run_parts
        self.plan = plan
        self.job = job
        self.hits = 0
        self.kept = 0
        self._keys: dict[str, str] = {}  # case id -> key computed before the case ran
        self._pipelines: dict[str, list[Any]] = {}  # pipeline name -> its stages' [config, identity]
        self._writable = True
        self._manifest: tuple[dict[str, str], dict[str, Any]] | None = None
        self._hashed = STATS["files_hashed"]  # files hashed before the lookups (see save_digests)

    @classmethod
    def open(cls, plan: Any, job: Any, environment: dict[str, Any]) -> CaseMemo | None:
        """The memo of a run (``plan``: the runner's plan, ``job``: its CaseJob), or None when the run
        has no cache folder or judges in a way the memo does not cover (see the module docstring)."""
        suite = plan.suite
        if job.cache_dir is None or not plan.judge or suite.mode != "paired" or suite.rerun_check:
            return None
        from harness.run.digest_memo import load_digests
        from harness.run.identity import harness_code_digest, measure_identity

        directory = Path(job.cache_dir) / "memo"
        load_digests(directory / DIGESTS_FILE)  # before anything is hashed: weights are hashed once per machine
        parts = {"schema": MEMO_SCHEMA, "harness_code": harness_code_digest(), "measure": measure_identity(),
                 "env": {k: environment.get(k) for k in _ENV_KEYS},
                 "suite": [suite.name, str(suite.path), suite.ref, suite.tile, suite.ring, suite.threads,
                           suite.batch_seeds],
                 "compare": [repr(plan.config), repr(suite.compare)], "baselines": str(plan.store.dir),
                 "pythonpath": list(job.pythonpath), "auto_device": job.auto_device,
                 "store": str(job.store_dir) if job.store_dir else None}
        bound = job.cache_max_bytes
        from harness.run.cache import DEFAULT_MAX_BYTES

        return cls(directory, max(1, int(bound or DEFAULT_MAX_BYTES) // _SHARE), parts, plan, job, environment)

    # -- keys
    def _stages(self, case: Case, fresh: bool) -> list[Any]:
        """Per stage of the case's pipeline ``[resolved backend config, stage identity]`` (kept per
        pipeline for the run; ``fresh``: computed again, for the key after the case ran)."""
        name = case.pipeline.name
        if fresh or name not in self._pipelines:
            from harness.run.identity import stage_identity
            from harness.stages import backend_config, build_backend

            out = []
            for spec in case.pipeline.stages:
                backend = build_backend(spec.stage, spec.backend, dict(spec.params))
                out.append([backend_config(backend), stage_identity(backend)])
            self._pipelines[name] = out
        return self._pipelines[name]

    def _baseline(self, case_id: str, fresh: bool) -> list[Any]:
        """The baseline file's sha256 (None: no file), the sha256 its manifest lists, and whether a
        bake left it pending: everything :meth:`BaselineStore.load` reads.  The manifest is read
        once for the run's lookups (``fresh``: again, for the key after the case ran)."""
        from harness.run.identity import file_digest

        store = self.plan.store
        p, rel = store.path_for(case_id), store.rel(case_id)
        if fresh or self._manifest is None:
            self._manifest = store.manifest_file.read()
        manifest, pending = self._manifest
        digest = file_digest(p) if p.exists() else None
        return [digest, manifest.get(rel), rel in pending]

    def key(self, case: Case, *, fresh: bool = False) -> str | None:
        """The case's key; None when part of it cannot be known (the case then runs and is not kept)."""
        from harness.run.batching import chunk_of

        suite, job = self.plan.suite, self.job
        try:
            vector = suite.vector(case.vector)
            if not vector.digest:
                return None
            chunk = chunk_of(case.seed, suite.seeds if job.seeds is None else job.seeds, suite.batch_seeds)
            doc = {"run": self.run_parts, "case": case.id, "vector": [vector.id, vector.digest],
                   "pipeline": case.pipeline.as_dict(), "stages": self._stages(case, fresh), "seed": case.seed,
                   "chunk": list(chunk), "baseline": self._baseline(case.id, fresh)}
            return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        except Exception:  # noqa: BLE001 - a bad backend, vector or baseline: the worker says what (a miss)
            return None

    # -- reading
    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}{SUFFIX}"

    def lookup(self, case: Case) -> Hit | None:
        """The case's entry, verified, or None (a miss).  A damaged entry is deleted."""
        key = self.key(case)
        if key is None:
            return None
        self._keys[case.id] = key
        p = self.path_for(key)
        hit = read_entry(p, lambda data: _verified(key, case.id, data))  # a damaged one: run the case
        if hit is None:
            return None
        if not self._images_present(hit.record.get("case", {}).get("artifacts")):
            return None  # the store lost an image since: run it again (the entry is replaced then)
        touch(p)
        return hit

    def _images_present(self, artifacts: Any) -> bool:
        """Every artifact a store reference present in this run's image store (each touched: used)."""
        from harness.run.store import ImageStore, is_ref

        if not isinstance(artifacts, dict) or self.job.store_dir is None:
            return False
        store = ImageStore(self.job.store_dir)
        for ref in artifacts.values():
            if not is_ref(ref) or not store.has(ref):
                return False
        for ref in artifacts.values():
            touch(store.path(ref))
        return True

    # -- writing
    def keep(self, case: Case, cr: CaseResult, run_dir: Path) -> None:
        """Remember the case just recorded in ``run_dir`` (``cr``: its result), when it may be kept."""
        from harness.run.store import is_ref

        key = self._keys.pop(case.id, None)
        if (not self._writable or key is None or cr.status not in ("pass", "fail") or cr.config.get("retried")
                or cr.config.get("memo") or not all(is_ref(a) for a in cr.artifacts.values())):
            return
        if self.key(case, fresh=True) != key:  # something it depends on changed while it ran
            return
        try:
            drift = self._drift(case.id)
        except Exception:  # noqa: BLE001 - its baseline changed since it was judged: not kept
            return
        from harness.report.check_parts import part_path
        from harness.naming import case_slug

        try:
            part = part_path(run_dir, case.id).read_bytes()
            record = (run_dir / "cases" / f"{case_slug(case.id)}.json").read_bytes()
            ref = json.loads(record).get("measurement")
            measure = (run_dir / "cases" / ref["file"]).read_bytes() if ref else None
            data = pack(key, run_dir.name, case.id, drift, part, record, measure)
            from harness.run.rundir import renamed_into_place

            self.directory.mkdir(parents=True, exist_ok=True)
            renamed_into_place(self.path_for(key), data)  # no fsync: a torn entry fails its checksum (a miss)
            self.kept += 1
            if self.kept % _EVICT_EVERY == 1:  # the first write of a run and every 64th: other runs write too
                self.evict()
        except OSError as exc:  # a full disk must not fail the run: warn once, stop keeping
            print(f"harness: warning: case memo {self.directory} not written ({exc}); continuing without it",
                  file=sys.stderr)
            self._writable = False

    def _drift(self, case_id: str) -> list[str]:
        """How the case's baseline's environment differs from this run's (its part of the drift note)."""
        from harness.run.judge import environment_drift

        base = self.plan.store.load(case_id)
        return environment_drift(base.environment, self.environment) if base is not None else []

    def drop(self, key: str) -> None:
        """Delete the entry of ``key`` (it cannot be replayed)."""
        Path(self.path_for(key)).unlink(missing_ok=True)

    def save_digests(self) -> None:
        """Keep the file digests this run computed for the next one (:mod:`harness.run.digest_memo`)."""
        if STATS["files_hashed"] == self._hashed or not self._writable:
            return
        from harness.run.digest_memo import save_digests

        try:
            save_digests(self.directory / DIGESTS_FILE)
            self._hashed = STATS["files_hashed"]
        except OSError:
            pass  # only a speed-up: the next run hashes them again

    def evict(self) -> list[str]:
        """Delete least recently used entries while the folder is over its bound; the keys deleted."""
        entries = []
        try:
            listing = list(os.scandir(self.directory))
        except OSError:
            return []
        for de in listing:
            try:
                if de.name.endswith(SUFFIX) and de.is_file(follow_symlinks=False):
                    st = de.stat(follow_symlinks=False)
                    entries.append((st.st_mtime_ns, de.name, st.st_size))
            except OSError:
                continue
        return evict_lru(self.directory, entries, sum(e[2] for e in entries), self.max_bytes, SUFFIX)[0]


def _verified(key: str, case_id: str, data: bytes) -> Hit:
    """The entry ``data`` unpacked, with its recorded case; raises when it is another case's."""
    hit = unpack(key, data)
    if hit.case_id != case_id or hit.record.get("case", {}).get("id") != case_id:
        raise ValueError("another case's entry")
    hit.result = _result(hit.record["case"])
    return hit


def replay(memo: CaseMemo | None, run: Any, cases: Sequence[Case],
           landed: Callable[[CaseResult], bool] | None = None) -> list[Case]:
    """Record every case of ``cases`` that ``memo`` holds into ``run`` (the runner's run in progress);
    the cases left to execute, in order.  At the first of those, the workers' fork server starts
    (:func:`harness.run.workerstart.start_prewarmed`).

    ``landed(result)`` is told of each replayed case as the runner is of an executed one (its
    progress line, a fail limit); when it answers True no further case is replayed or executed (the
    result is ``[]``).  Without it each hit's progress line is said here."""
    from harness.run.workerstart import start_prewarmed

    if memo is None:
        start_prewarmed()
        return list(cases)
    todo: list[Case] = []
    stop = False
    for case in cases:
        t0 = time.perf_counter()
        hit = memo.lookup(case)
        if hit is None:
            if not todo:  # the first case to execute: the workers' fork server starts now
                start_prewarmed()
            todo.append(case)
            continue
        with run.signals.deferred():
            cr = _recorded(memo, hit, run.folder, t0)
            if cr is None:  # refused by the record schema: run it (it is recorded again then)
                todo.append(case)
                continue
            run.recorded[case.id] = cr
            run.drift.update(hit.drift)
        memo.hits += 1
        if landed is not None:
            stop = landed(cr)
            if stop:
                break
            continue
        done = sum(cid in run.recorded for cid in run.by_id)
        extra = f"  {cr.failed_count} failed checks" if cr.failed_count else ""
        run.say(f"[{done}/{len(run.by_id)}] {cr.status:5} {case.id} (memo of {hit.run}){extra}")
    memo.save_digests()
    if memo.hits:  # said, not a report note: each case's config.memo says it where the report is read
        run.say(f"{memo.hits} of {len(cases)} cases recorded from the case memo (same code, weights, inputs, "
                "settings and baselines as the run each one's config.memo names); --no-cache runs them all")
    return [] if stop else todo


def _result(doc: dict[str, Any]) -> CaseResult:
    """The recorded case ``doc`` as its run held it: an absolute check keeps its note (a plain
    :meth:`Check.from_dict` reads it as a compared check, without one).  The record's schema is
    checked when the case is written into the new run folder."""
    import dataclasses

    from harness.checks.expectations import ExpectationCheck
    from harness.comparing.engine import Check
    from harness.report.schema import CaseResult

    cr = CaseResult.from_dict(doc, 2)
    cr.checks = [ExpectationCheck(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)}, note=str(d["note"]))
                 if type(c) is Check and d.get("note") else c for c, d in zip(cr.checks, doc["checks"])]
    return cr


def _recorded(memo: CaseMemo, hit: Hit, folder: Any, t0: float) -> CaseResult | None:
    """Write the hit into the run folder (checks part, measurement, then the case record, with
    ``config.memo`` and the replay's own timing since ``t0``); the in-memory result.  None (and the
    entry deleted) when the record does not pass the case-record schema."""
    from harness.errors import InputError

    cr = hit.result
    cr.config = {**cr.config, "memo": hit.run, "memo_timings": dict(cr.timings)}
    cr.timings = {"memo": time.perf_counter() - t0}  # the lookup and this: what the case cost this run
    ref = hit.record.get("measurement")
    try:
        folder.replay(cr, hit.part, (ref, hit.measure) if ref and hit.measure is not None else None)
    except (InputError, RuntimeError):  # the checksum held: a forged entry, or one the schema refuses now
        memo.drop(hit.key)
        return None
    return cr
