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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.errors import ConfigError
from harness.naming import NAME_RE, case_id
from harness.validate import Where, is_int, read_toml

if TYPE_CHECKING:
    from harness.comparing.engine import CompareConfig
    from harness.pipeline.vectors import Vector
    from harness.project import Project

__all__ = ["Suite", "Calibration", "DistributionConfig", "CrossCheck", "PERTURBATIONS", "Pipeline", "StageSpec", "Case",
           "load_suite", "find_suite", "match_k", "parse_seeds", "load_tolerances"]

# sorted: error messages list them in this order
_TOP_KEYS = ("batch_seeds", "calibrate", "compare", "cross", "description", "distribution", "measure", "mode", "name",
             "pipelines", "rerun_check", "seeds", "threads", "timeout_s", "tolerances", "vectors")
_TOLERANCE_KEYS = ("abs_tol", "direction", "gating", "metric", "rel_tol", "slice")
_MODES = ("paired", "distribution")
PERTURBATIONS = ("jitter", "rerun", "threads")  # benign perturbations a [calibrate] table may declare
_NAME = NAME_RE


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
    case, and under which benign perturbations (see :mod:`harness.pipeline.calibration`)."""

    renders: int = 3
    perturb: tuple[str, ...] = ("rerun",)


@dataclass(frozen=True)
class DistributionConfig:
    """A suite's ``[distribution]`` table: how seed distributions are tested (distribution mode).

    ``alpha``: the family-wise false-alarm rate of one group's comparison (all its slices; 3 %:
    a nightly gate on an unchanged model may fail 5 % of nights, and a baked baseline's own
    sampling error adds to the test's level);
    ``power``: the probability of detecting a drift of the target size, used to report each
    check's smallest detectable drift and the seed count that would reach a target;
    ``detect_hue_deg`` / ``detect_band_rel``: the drifts the suite must be able to see (a hue
    rotation in degrees, a relative change of band energy); ``require_power``: fail (rather
    than note) when the seeds at hand cannot detect them, or when the baseline's self-check
    expects more false alarms than ``max_false_alarm``.

    A baseline is baked once and compared night after night, so its own sampling error is in
    every comparison: ``baseline_seeds`` (default: the suite's seeds) is how many seeds
    ``harness bake`` stores per group -- the suite's seeds, then the integers after the largest;
    ``selfcheck_seeds`` (default: as many as it bakes, at least twice the suite's seed count;
    0: off) held-out seeds, the
    integers after the baked ones, that bake renders, compares with the baked set in
    ``selfcheck_draws`` resampled candidate sets of the suite's size and never stores: the
    fraction of draws that fail is the false-alarm rate this baseline is expected to give
    (:mod:`harness.comparing.selfcheck`), recorded with the baseline and reported by every run
    against it; above ``max_false_alarm`` bake says so and names the seed count that would
    reach it."""

    alpha: float = 0.03
    power: float = 0.8
    detect_hue_deg: float = 6.0
    detect_band_rel: float = 0.1
    require_power: bool = True
    baseline_seeds: int | None = None
    selfcheck_seeds: int | None = None
    selfcheck_draws: int = 100
    max_false_alarm: float = 0.10


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
    from harness.pipeline.stages import STAGES, build_backend

    if not isinstance(raw, dict) or not raw:
        raise w.error("pipelines", "expected at least one [pipelines.NAME] table")
    out, pw = [], w.at("pipelines")
    for name, stages in raw.items():
        if not _NAME.match(name):
            raise pw.error(name, "names use letters, digits, '_', '-', '.'")
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
    from harness.pipeline.vectors import discover
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
    if not isinstance(name, str) or not _NAME.match(name):
        raise w.invalid("name", name, "a simple name")
    seeds = w.int_list("seeds", raw.get("seeds", [0]), 0, unique=True, items="seeds")
    mode = w.choice("mode", raw.get("mode", "paired"), _MODES)
    if mode == "distribution" and len(seeds) < 2:
        raise w.error("seeds", "distribution mode needs at least 2 seeds")
    threads = w.integer("threads", raw.get("threads", 1), 1)
    timeout_s = w.number("timeout_s", raw["timeout_s"], 0, None, lo_open=True) if "timeout_s" in raw else None
    known = discover(project.vector_roots)
    vec = raw.get("vectors", ["*"])
    if not isinstance(vec, list) or not vec or not all(isinstance(v, str) for v in vec):
        raise w.error("vectors", "expected a non-empty list of vector ids (or [\"*\"])")
    vectors = tuple(sorted(known)) if vec == ["*"] else tuple(vec)
    for v in vectors:
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
    batch_seeds = w.integer("batch_seeds", raw.get("batch_seeds", 1), 1, 256)
    rerun_check = w.boolean("rerun_check", raw.get("rerun_check", False))
    distribution = _distribution(w, raw["distribution"]) if "distribution" in raw else DistributionConfig()
    if distribution.baseline_seeds is not None and distribution.baseline_seeds < len(seeds):
        raise w.at("distribution").invalid("baseline_seeds", distribution.baseline_seeds,
                                           f"an integer >= the suite's {len(seeds)} seeds")
    cross = _cross(w, raw.get("cross", []), {pl.name for pl in pipelines})
    suite = Suite(name=name, path=p, description=str(raw.get("description", "")), seeds=seeds, vectors=vectors,
                  pipelines=pipelines, mode=mode, threads=threads, tile=tile, ring=ring,
                  compare=compare, vector_defs=tuple(known[v] for v in vectors), ref=ref, timeout_s=timeout_s,
                  calibrate=calibrate, batch_seeds=batch_seeds, rerun_check=rerun_check, distribution=distribution,
                  cross=cross)
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


def compare_config_from(p: Path, raw: dict[str, Any]):
    """The ``[compare]`` table and ``[[tolerances]]`` array of a suite or tolerance file."""
    from harness.comparing.engine import CompareConfig, ToleranceRule
    from harness.measuring.metrics import METRICS

    w = Where(p)
    comp = w.table("compare", raw.get("compare", {}))
    cw = w.at("compare")
    cw.keys(comp, ("k", "spread_k"))
    for key in ("k", "spread_k"):
        cw.number(key, comp.get(key, 1.0), 0, 100, lo_open=True, hi_open=True)
    rules = []
    for i, t in enumerate(w.array_of_tables("tolerances", raw.get("tolerances", []))):
        tw = w.at(f"tolerances[{i}]")
        tw.keys(t, _TOLERANCE_KEYS)
        if t.get("metric") not in METRICS:
            raise tw.error("metric", f"unknown metric {t.get('metric')!r}; allowed: {', '.join(METRICS.names())}")
        try:
            rules.append(ToleranceRule(**t))
        except (TypeError, ValueError) as exc:
            raise w.error(f"tolerances[{i}]", str(exc)) from None
    return CompareConfig(k=float(comp.get("k", 4.0)), spread_k=float(comp.get("spread_k", 3.0)), rules=tuple(rules))


def load_tolerances(path: str | Path):
    """A stand-alone tolerance file (``[compare]`` and ``[[tolerances]]``) for ``harness compare``."""
    p = Path(path)
    raw, _ = read_toml(p, "tolerance")
    Where(p).keys(raw, ("compare", "tolerances"))
    return compare_config_from(p, raw)


def find_suite(name_or_path: str | Path, dirs: Sequence[Path]) -> Path:
    """A suite name (``smoke``) is ``<dir>/smoke.toml`` in the first of ``dirs`` that has it;
    a path (``*.toml`` or an existing file) is used as given."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: suite file not found")
        return p
    for d in dirs:
        candidate = d / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    names = sorted({q.stem for d in dirs if d.is_dir() for q in d.glob("*.toml")})
    where = ", ".join(str(d) for d in dirs) or "(no suite folders)"
    raise ConfigError(f"--suite {name_or_path!r}: no such suite in {where}; known: {', '.join(names) or '(none)'}")


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def match_k(expr: str, case_id: str) -> bool:
    """pytest-style ``-k``: substrings combined with ``and``, ``or``, ``not`` and parentheses."""
    tokens = _TOKEN.findall(expr)
    out = []
    for t in tokens:
        if t in ("and", "or", "not", "(", ")"):
            out.append(t)
        else:
            out.append(repr(t.lower() in case_id.lower()))
    try:
        return bool(eval(" ".join(out), {"__builtins__": {}}, {}))  # noqa: S307 - only True/False/and/or/not
    except SyntaxError:
        raise ConfigError(f"-k {expr!r}: not a valid expression (use words with and / or / not)") from None


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 1,2,3`` or ranges ``101-196`` (inclusive; mixable: ``1,5-8``) as a list
    (``None`` when not given); a ConfigError names the option."""
    if text is None:
        return None
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if dash else (int(part), int(part))
        except ValueError:
            raise ConfigError(f"--seeds {text!r}: expected comma-separated integers or ranges, e.g. 1,2,3 or "
                              f"101-116") from None
        if first > last:
            raise ConfigError(f"--seeds {text!r}: range {part!r} runs backwards")
        if last - first >= 100_000:
            raise ConfigError(f"--seeds {text!r}: range {part!r} has more than 100000 seeds")
        seeds += range(first, last + 1)
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {text!r}: expected integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: a seed is named twice")
    return seeds
