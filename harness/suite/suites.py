"""Suites: TOML files that expand into vector × pipeline × seed permutations.

A suite names its seeds, the vectors it runs, named pipelines (one backend and
its parameters per stage), tolerance overrides and the comparison mode::

    name = "smoke"
    seeds = [1, 2, 3]
    vectors = ["receipt_microprint", "watermark_grass"]   # or ["*"]
    mode = "paired"                                       # or "distribution"
    threads = 1
    timeout_s = 600                                       # per case (`harness run --timeout` wins)

    [measure]
    tile = 64
    ring = 8

    [pipelines.classic]
    detect  = { backend = "ground_truth" }
    mask    = { backend = "shape", dilate_px = 2 }
    inpaint = { backend = "telea", radius = 3 }
    denoise = { backend = "nlmeans", strength = 0.45 }
    upscale = { backend = "lanczos", scale = 2 }

    [pipelines.faces]                                     # a pipeline may name its own vectors
    vectors = ["gan_faces_caption"]                       # (default: every vector of the suite)
    generate = { backend = "face_gan", model = "digiface" }

    [[tolerances]]
    metric = "band_power"
    slice = "band=top *"      # glob on the slice name
    rel_tol = 0.2

    batch_seeds = 8           # seeds a batching generate backend renders in one call
    rerun_check = true        # run each case twice: outputs that differ fail it

    [distribution]            # distribution mode: family-wise alpha, power, drifts to see
    alpha = 0.03
    detect_hue_deg = 6.0
    baseline_seeds = 256      # seeds `harness bake` stores per group (more than a run compares)
    selfcheck_seeds = 64      # held-out seeds bake renders, compares with the baked ones, never stores

    [[cross]]                 # cross-model: same vector and seed through two pipelines
    a = "faces"
    b = "faces_v2"
    max_hue_deg = 10.0
    max_hf_rel = 0.25

Configuration is resolved once here (CLI > suite > defaults) and passed down.
Every problem is a :class:`ConfigError` naming the file, the key and the
allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.comparing.settings import DistributionConfig
from harness.errors import ConfigError
from harness.suite.selection import find_suite, match_k
from harness.suite.tolerances import compare_config_from
from harness.naming import case_id, check_name
from harness.validate import Where, is_int, read_toml

if TYPE_CHECKING:
    from harness.comparing.engine import CompareConfig
    from harness.suite.vectors import Vector
    from harness.project import Project

__all__ = ["Suite", "Calibration", "CrossCheck", "PERTURBATIONS", "Pipeline", "StageSpec", "Case",
           "load_suite"]

# sorted: error messages list them in this order
_TOP_KEYS = ("batch_seeds", "calibrate", "compare", "cross", "description", "distribution", "measure", "mode", "name",
             "pipelines", "rerun_check", "seeds", "threads", "timeout_s", "tolerances", "vectors")
_MODES = ("paired", "distribution")
PERTURBATIONS = ("jitter", "rerun", "threads")  # benign perturbations a [calibrate] table may declare


@dataclass(frozen=True)
class StageSpec:
    stage: str
    backend: str
    params: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, **dict(self.params)}


@dataclass(frozen=True)
class Pipeline:
    name: str
    stages: tuple[StageSpec, ...]
    vectors: tuple[str, ...] | None = None  # the pipeline's own `vectors` key: only these (None: every vector)

    def as_dict(self) -> dict[str, Any]:
        return {s.stage: s.as_dict() for s in self.stages}


@dataclass(frozen=True)
class Case:
    """One permutation: a vector through a pipeline with a seed."""

    vector: str
    pipeline: Pipeline
    seed: int

    @property
    def id(self) -> str:
        return case_id(self.vector, self.pipeline.name, self.seed)


@dataclass(frozen=True)
class Calibration:
    """A suite's ``[calibrate]`` table: how many extra renders ``harness bake`` makes of each
    case, and under which benign perturbations (see :mod:`harness.run.calibration`)."""

    renders: int = 3
    perturb: tuple[str, ...] = ("rerun",)


@dataclass(frozen=True)
class CrossCheck:
    """One ``[[cross]]`` entry: the same vector and seed through pipelines ``a`` and ``b``,
    compared image to image at ``stage`` (``generate``: the generated base image, ``output``:
    the final image); the hue offset and the relative high-frequency energy change between
    them must stay within ``max_hue_deg`` / ``max_hf_rel``."""

    a: str
    b: str
    stage: str = "generate"
    max_hue_deg: float = 10.0
    max_hf_rel: float = 0.25


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    description: str
    seeds: tuple[int, ...]
    vectors: tuple[str, ...]
    pipelines: tuple[Pipeline, ...]
    mode: str = "paired"
    threads: int = 1
    tile: int | None = None
    ring: int = 8
    compare: CompareConfig | None = None
    vector_defs: tuple[Vector, ...] = ()
    ref: str = ""
    timeout_s: float | None = None  # seconds one case may run (`harness run --timeout` overrides it)
    calibrate: Calibration | None = None  # the suite's [calibrate] table (`harness bake --calibrate N`)
    batch_seeds: int = 1  # seeds a generate backend that supports batching renders in one call
    rerun_check: bool = False  # run every case twice; outputs that differ fail the case
    distribution: DistributionConfig = DistributionConfig()  # [distribution]: the seed-distribution tests
    cross: tuple[CrossCheck, ...] = ()  # [[cross]]: cross-model comparisons (conditioning drift)
    notes: tuple[str, ...] = ()  # facts about how it was resolved (a project vector shadowing a built-in one)

    def vector(self, vector_id: str) -> Vector:
        """The parsed vector ``vector_id`` (resolved when the suite was loaded)."""
        for v in self.vector_defs:
            if v.id == vector_id:
                return v
        raise ConfigError(f"suite {self.name!r} has no vector {vector_id!r}")

    def cases(self, *, seeds: Sequence[int] | None = None, k_expr: str | None = None) -> list[Case]:
        """All permutations (vector-major), optionally with other seeds and a ``-k`` filter."""
        out = [Case(v, p, s) for v in self.vectors for p in self.pipelines for s in (seeds or self.seeds)
               if p.vectors is None or v in p.vectors]
        if k_expr:
            out = [c for c in out if match_k(k_expr, c.id)]
        return out

    def baseline_ids(self) -> set[str]:
        """Ids of every case whose baseline the suite keeps: its cases and, in distribution mode, the
        extra seeds ``[distribution] baseline_seeds`` bakes (the suite's seeds, then the next integers)."""
        ids = {c.id for c in self.cases()}
        n = self.distribution.baseline_seeds or 0
        if self.mode == "distribution" and n > len(self.seeds):
            nxt = max(self.seeds) + 1
            ids |= {c.id for c in self.cases(seeds=list(range(nxt, nxt + n - len(self.seeds))))}
        return ids

    def compare_config(self):
        from harness.comparing.engine import CompareConfig

        return self.compare or CompareConfig()


def _pipelines(w: Where, raw: Any, suite_vectors: Sequence[str]) -> tuple[Pipeline, ...]:
    from harness.stages import STAGES, build_backend

    if not isinstance(raw, dict) or not raw:
        raise w.error("pipelines", "expected at least one [pipelines.NAME] table")
    out, pw = [], w.at("pipelines")
    for name, stages in raw.items():
        try:
            check_name("pipeline", name)  # one pattern for every name read (harness.naming)
        except ValueError as exc:
            raise pw.error(name, str(exc)) from None
        if not isinstance(stages, dict):
            raise pw.error(name, "expected a table of stages")
        sw = pw.at(name)
        sw.keys(stages, (*STAGES, "vectors"), noun="stage")
        only = None
        if "vectors" in stages:
            only = stages["vectors"]
            if not isinstance(only, list) or not only or not all(isinstance(v, str) for v in only):
                raise sw.error("vectors", "expected a non-empty list of the suite's vector ids this pipeline runs on")
            for v in only:
                if v not in suite_vectors:
                    raise sw.error("vectors", f"vector {v!r} is not among the suite's vectors: "
                                              f"{', '.join(suite_vectors)}")
            only = tuple(dict.fromkeys(only))
        specs = []
        for stage in STAGES:  # pipeline order
            cfg = stages.get(stage)
            if cfg is None:
                continue
            if not isinstance(cfg, dict) or "backend" not in cfg:
                raise sw.error(stage, "expected a table with a 'backend' key, e.g. { backend = \"telea\" }")
            params = {k: v for k, v in cfg.items() if k != "backend"}
            try:
                build_backend(stage, cfg["backend"], params)  # validate names and params now
            except ConfigError as exc:
                raise sw.error(stage, str(exc)) from None
            specs.append(StageSpec(stage, str(cfg["backend"]), tuple(sorted(params.items()))))
        out.append(Pipeline(name, tuple(specs), only))
    return tuple(out)


def load_suite(name_or_path: str | Path | None = None, *, project: Project | None = None) -> Suite:
    """Parse and validate a suite, by name (searched in the project's suite folders, then the
    built-ins) or by path.  Vectors and backends are resolved now, not mid-run.  ``project``
    defaults to the one found from the working directory (:func:`harness.project.load_project`)."""
    from harness.suite.vectors import discover_shadowing, shadowing_note
    from harness.project import load_project

    project = project or load_project()
    project.activate()  # custom `module:attr` backends of the project become importable
    if name_or_path is None:
        name_or_path = project.default_suite
    p = find_suite(name_or_path, project.suite_dirs)
    ref = p.stem if not (isinstance(name_or_path, Path) or Path(name_or_path).suffix == ".toml"
                         or Path(name_or_path).exists()) else str(p)
    raw, _ = read_toml(p, "suite")
    w = Where(p)
    w.keys(raw, _TOP_KEYS)
    name = raw.get("name", p.stem)
    try:
        check_name("suite", name)
    except ValueError as exc:
        raise w.error("name", str(exc)) from None
    seeds = w.int_list("seeds", raw.get("seeds", [0]), 0, unique=True, items="seeds")
    mode = w.choice("mode", raw.get("mode", "paired"), _MODES)
    if mode == "distribution" and len(seeds) < 2:
        raise w.error("seeds", "distribution mode needs at least 2 seeds")
    threads = w.integer("threads", raw.get("threads", 1), 1)
    timeout_s = w.number("timeout_s", raw["timeout_s"], 0, None, lo_open=True) if "timeout_s" in raw else None
    known, shadowed = discover_shadowing(project.vector_roots)
    vec = raw.get("vectors", ["*"])
    if not isinstance(vec, list) or not vec or not all(isinstance(v, str) for v in vec):
        raise w.error("vectors", "expected a non-empty list of vector ids (or [\"*\"])")
    vectors = tuple(sorted(known)) if vec == ["*"] else tuple(vec)
    for v in vectors:
        try:
            check_name("vector", v)
        except ValueError as exc:
            raise w.error("vectors", str(exc)) from None
        if v not in known:
            raise w.error("vectors", f"unknown vector {v!r}; known: {', '.join(sorted(known))}")
    meas = w.table("measure", raw.get("measure", {}))
    mw = w.at("measure")
    mw.keys(meas, ("tile", "ring"))
    tile = meas.get("tile")
    if tile is not None and not (is_int(tile) and tile >= 8 and tile % 2 == 0):
        raise mw.invalid("tile", tile, "an even integer >= 8")
    ring = mw.integer("ring", meas.get("ring", 8), 1)
    compare = compare_config_from(p, raw)
    calibrate = _calibration(w, raw["calibrate"]) if "calibrate" in raw else None
    pipelines = _pipelines(w, raw.get("pipelines"), vectors)
    from harness.suite.guides import check_suite_guides

    check_suite_guides(w, pipelines, {v: known[v] for v in vectors})  # upscale guides the vectors can give
    batch_seeds = w.integer("batch_seeds", raw.get("batch_seeds", 1), 1, 256)
    rerun_check = w.boolean("rerun_check", raw.get("rerun_check", False))
    distribution = _distribution(w, raw["distribution"]) if "distribution" in raw else DistributionConfig()
    if distribution.baseline_seeds is not None and distribution.baseline_seeds < len(seeds):
        raise w.at("distribution").invalid("baseline_seeds", distribution.baseline_seeds,
                                           f"an integer >= the suite's {len(seeds)} seeds")
    cross = _cross(w, raw.get("cross", []), {pl.name for pl in pipelines})
    note = shadowing_note(known, {v: shadowed[v] for v in vectors if v in shadowed})
    suite = Suite(name=name, path=p, description=str(raw.get("description", "")), seeds=seeds, vectors=vectors,
                  pipelines=pipelines, mode=mode, threads=threads, tile=tile, ring=ring,
                  compare=compare, vector_defs=tuple(known[v] for v in vectors), ref=ref, timeout_s=timeout_s,
                  calibrate=calibrate, batch_seeds=batch_seeds, rerun_check=rerun_check, distribution=distribution,
                  cross=cross, notes=(note,) if note else ())
    return suite


def _distribution(w: Where, raw: Any) -> DistributionConfig:
    """``[distribution]``: alpha, power, detect_hue_deg, detect_band_rel, require_power and the
    baseline's size and self-check (baseline_seeds, selfcheck_seeds, selfcheck_draws, max_false_alarm)."""
    t = w.table("distribution", raw)
    dw = w.at("distribution")
    dw.keys(t, ("alpha", "baseline_seeds", "detect_band_rel", "detect_hue_deg", "max_false_alarm", "power",
                "require_power", "selfcheck_draws", "selfcheck_seeds"))
    d = DistributionConfig()
    return DistributionConfig(
        alpha=dw.number("alpha", t.get("alpha", d.alpha), 0, 0.5, lo_open=True),
        power=dw.number("power", t.get("power", d.power), 0.5, 1, hi_open=True),
        detect_hue_deg=dw.number("detect_hue_deg", t.get("detect_hue_deg", d.detect_hue_deg), 0, 180, lo_open=True),
        detect_band_rel=dw.number("detect_band_rel", t.get("detect_band_rel", d.detect_band_rel), 0, 10, lo_open=True),
        require_power=dw.boolean("require_power", t.get("require_power", d.require_power)),
        baseline_seeds=dw.integer("baseline_seeds", t["baseline_seeds"], 2, 100_000) if "baseline_seeds" in t else None,
        selfcheck_seeds=dw.integer("selfcheck_seeds", t["selfcheck_seeds"], 0, 100_000)
        if "selfcheck_seeds" in t else None,
        selfcheck_draws=dw.integer("selfcheck_draws", t.get("selfcheck_draws", d.selfcheck_draws), 1, 100_000),
        max_false_alarm=dw.number("max_false_alarm", t.get("max_false_alarm", d.max_false_alarm), 0, 1,
                                  lo_open=True))


CROSS_STAGES = ("generate", "output")


def _cross(w: Where, raw: Any, pipelines: set[str]) -> tuple[CrossCheck, ...]:
    """``[[cross]]``: ``a``/``b`` pipeline names, ``stage``, ``max_hue_deg``, ``max_hf_rel``."""
    out = []
    for i, t in enumerate(w.array_of_tables("cross", raw)):
        cw = w.at(f"cross[{i}]")
        cw.keys(t, ("a", "b", "max_hf_rel", "max_hue_deg", "stage"))
        names = []
        for key in ("a", "b"):
            if key not in t:
                raise cw.error(key, "missing: name two pipelines of this suite as a and b")
            name = cw.string(key, t[key])
            if name not in pipelines:
                raise cw.error(key, f"unknown pipeline {name!r}; this suite has: {', '.join(sorted(pipelines))}")
            names.append(name)
        if names[0] == names[1]:
            raise cw.error("b", "a and b name the same pipeline")
        d = CrossCheck(names[0], names[1])
        out.append(CrossCheck(
            a=names[0], b=names[1], stage=cw.choice("stage", t.get("stage", d.stage), CROSS_STAGES),
            max_hue_deg=cw.number("max_hue_deg", t.get("max_hue_deg", d.max_hue_deg), 0, 180, lo_open=True),
            max_hf_rel=cw.number("max_hf_rel", t.get("max_hf_rel", d.max_hf_rel), 0, None, lo_open=True)))
    return tuple(out)


def _calibration(w: Where, raw: Any) -> Calibration:
    """``[calibrate]``: ``renders = N`` (>= 2) and ``perturb = ["jitter", "threads", "rerun"]``."""
    cal = w.table("calibrate", raw)
    cw = w.at("calibrate")
    cw.keys(cal, ("perturb", "renders"))
    renders = cw.integer("renders", cal.get("renders", 3), 2)
    perturb = cal.get("perturb", ["rerun"])
    if not isinstance(perturb, list) or not perturb:
        raise cw.invalid("perturb", perturb, f"a non-empty list of {', '.join(PERTURBATIONS)}")
    for i, x in enumerate(perturb):
        cw.choice(f"perturb[{i}]", x, PERTURBATIONS)
    return Calibration(renders=renders, perturb=tuple(dict.fromkeys(perturb)))
