"""The harness_check fixture's engine: baselines beside the test module, pytest-regressions' lifecycle, syrupy's unused rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness.status import GATING

if TYPE_CHECKING:
    from harness.comparing.engine import Check, CompareConfig

from harness.plugin.common import show_path


# ==========================================================================================
# harness_check
#
# The baseline of a check lives beside its test module, <module dir>/<module stem>/<test>.json:
# <test> is the test's name within the module (a class prefixed, `TestA.test_y`; parameters
# kept, `test_x[a-1]`; characters unsafe in a file name replaced by `_`), and `name=` appends
# `-<name>`.  It is a small JSON document, written atomically and indented so that a changed
# value is a one-line diff in review:
#     {"schema_version": 1, "measurement": <Measurement.to_dict()>, "params": {"tile", "ring", "shape"}}
# The lifecycle is pytest-regressions' (common.py): no baseline -> write it and fail; mismatch ->
# fail with the worst checks and write <test>.obtained.json beside the baseline; --harness-regen
# -> rewrite the baseline and still fail; match -> pass (a stale .obtained.json is removed).
# A corrupt baseline fails with a message naming the file.
# ==========================================================================================
SCHEMA_VERSION = 1
_UNSAFE = re.compile(r"[^\w.\[\]-]+")


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip(".") or "_"


def baseline_stem(item: pytest.Item) -> str:
    """The test's file name within its module's data folder: ``test_x[a-1]``, ``TestA.test_y``."""
    chain = item.listchain()
    module = item.getparent(pytest.Module)
    names = [n.name for n in chain[chain.index(module) + 1:]] if module in chain else [item.name]
    return _safe(".".join(names))


def data_dir(item: pytest.Item) -> Path:
    """``<module dir>/<module stem>/``: where the module's baselines live."""
    module = item.getparent(pytest.Module)
    path = Path(module.path if module is not None else item.path)
    return path.parent / path.stem


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


class _Corrupt(Exception):
    pass


class HarnessCheck:
    """The callable the ``harness_check`` fixture returns (one per test)."""

    def __init__(self, item: pytest.Item, *, regen: bool, max_checks: int, rootpath: Path) -> None:
        self.item = item
        self.regen = regen
        self.max_checks = max_checks
        self.rootpath = Path(rootpath)
        self._seen: set[Path] = set()

    def path_for(self, name: str | None = None) -> Path:
        stem = baseline_stem(self.item) + (f"-{_safe(name)}" if name else "")
        return data_dir(self.item) / f"{stem}.json"

    def __call__(self, image, mask=None, *, anchors=None, tile: int | None = None, ring: int = 8,
                 config: CompareConfig | None = None, tolerances: str | Path | None = None,
                 name: str | None = None) -> list[Check]:
        """Measure ``image`` (``(H, W, 3)`` uint8, uint16 or float in [0, 1]; optional ``(H, W)``
        ``mask`` and ``anchors``; see :func:`harness.measure`) and compare it with the baseline.
        ``config`` (a CompareConfig) or ``tolerances`` (a ``[[tolerances]]`` TOML file, relative to
        the test module's folder) sets the tolerances.  Returns the checks when they pass."""
        __tracebackhide__ = True
        import numpy as np

        from harness.comparing.engine import compare_paired, summarize_status
        from harness.measuring.driver import measure

        if config is not None and tolerances is not None:
            raise TypeError("harness_check: pass config= or tolerances=, not both")
        path = self.path_for(name)
        if path in self._seen:
            pytest.fail(f"harness_check: {self._show(path)} was already checked in this test; give each check "
                        f"its own name=", pytrace=False)
        self._seen.add(path)
        self.item.user_properties.append(("harness_baseline", str(path)))
        cmp_config = config if config is not None else self._tolerances(tolerances)
        measurement = measure(image, mask, anchors=anchors, tile=tile, ring=ring)
        params = {"tile": tile, "ring": ring, "shape": [int(n) for n in np.shape(image)[:2]]}
        doc = {"schema_version": SCHEMA_VERSION, "measurement": measurement.to_dict(), "params": params}
        obtained = path.with_name(f"{path.stem}.obtained.json")
        if self.regen:
            self._write(path, doc, obtained)
            pytest.fail(f"harness_check: regenerated {self._show(path)} (--harness-regen); rerun without it to "
                        f"compare", pytrace=False)
        if not path.exists():
            self._write(path, doc, obtained)
            pytest.fail(f"harness_check: baseline written to {self._show(path)}; rerun to compare", pytrace=False)
        try:
            base, base_params = self._load(path)
        except _Corrupt as exc:
            pytest.fail(f"harness_check: {self._show(path)}: corrupt baseline ({exc}); restore it from version "
                        f"control, or rewrite it with --harness-regen", pytrace=False)
        head = f"harness_check {path.stem}: fail against {self._show(path)}"
        if base_params != params:
            self._write(obtained, doc)
            pytest.fail(f"{head}\n  the baseline was measured with {_describe(base_params)}, this check with "
                        f"{_describe(params)}\n{self._obtained_hint(obtained)}", pytrace=False)
        try:
            checks = compare_paired(base, measurement, cmp_config)
        except ValueError as exc:
            self._write(obtained, doc)
            pytest.fail(f"{head}\n  {exc}\n{self._obtained_hint(obtained)}", pytrace=False)
        status = summarize_status(checks)
        if status in GATING:
            from harness.report.text import check_lines

            self._write(obtained, doc)
            lines = [f"harness_check {path.stem}: {status} against {self._show(path)}"]
            lines += check_lines(checks, self.max_checks)
            pytest.fail("\n".join(lines + [self._obtained_hint(obtained)]), pytrace=False)
        obtained.unlink(missing_ok=True)
        return checks

    def _tolerances(self, tolerances: str | Path | None):
        from harness.comparing.engine import CompareConfig

        if tolerances is None:
            return CompareConfig()
        from harness.errors import HarnessError
        from harness.suite.tolerances import load_tolerances

        p = Path(tolerances)
        try:
            return load_tolerances(p if p.is_absolute() else data_dir(self.item).parent / p)
        except HarnessError as exc:
            pytest.fail(f"harness_check: tolerances: {exc}", pytrace=False)

    @staticmethod
    def _load(path: Path):
        from harness.measuring.result import Measurement

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _Corrupt(f"not readable JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
            got = doc.get("schema_version") if isinstance(doc, dict) else type(doc).__name__
            raise _Corrupt(f"schema_version {got!r}, expected {SCHEMA_VERSION}")
        params = doc.get("params")
        if not isinstance(params, dict) or set(params) != {"tile", "ring", "shape"}:
            raise _Corrupt("'params' must hold tile, ring and shape")
        try:
            return Measurement.from_dict(doc["measurement"]), params
        except (KeyError, ValueError) as exc:
            raise _Corrupt(f"'measurement': {exc}") from None

    def _write(self, path: Path, doc: dict[str, Any], stale: Path | None = None) -> None:
        from harness.fsio import atomic_write_text

        atomic_write_text(path, _dump(doc))
        if stale is not None:
            stale.unlink(missing_ok=True)

    def _show(self, path: Path) -> str:
        return show_path(path, self.rootpath)

    def _obtained_hint(self, obtained: Path) -> str:
        return (f"  obtained values written to {self._show(obtained)}; if the change is intended, accept it "
                f"with --harness-regen")


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={params.get(k)}" for k in ("tile", "ring", "shape"))


class BaselineUse:
    """Which baselines the checks used, and which test modules ran whole (syrupy's rule).

    A ``*.json`` in a module's data folder (not ``*.obtained.json``) that no check used is
    unused only when the whole module ran: nothing deselected (``-k``, ``-m``, ``--lf``) or
    left out (``path::test``), every test finished.  Baselines of tests that failed or were
    skipped are spared: their checks may simply not have run.
    ``modules`` (plain data, so xdist workers can hand it to the controller) maps a test
    module that uses ``harness_check`` and was selected whole to its data folder and its
    tests' node ids and baseline stems; the owner records the used paths and each test's
    outcome from the reports.
    """

    def __init__(self) -> None:
        self.modules: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.finished: set[str] = set()
        self.not_passed: set[str] = set()

    def collected(self, items, partial: set[Path]) -> None:
        modules: dict[str, dict[str, Any]] = {}
        uses: set[str] = set()
        for item in items:
            module = item.getparent(pytest.Module)
            if module is None:
                continue
            key = str(module.path)
            entry = modules.setdefault(key, {"data_dir": str(data_dir(item)), "items": {}})
            entry["items"][item.nodeid] = baseline_stem(item)
            if "harness_check" in getattr(item, "fixturenames", ()):
                uses.add(key)
        self.modules = {k: v for k, v in modules.items() if k in uses and Path(k).resolve() not in partial}

    def merge(self, modules: dict[str, dict[str, Any]] | None) -> None:
        for key, entry in (modules or {}).items():
            self.modules.setdefault(key, entry)

    def outcome(self, report: pytest.TestReport) -> None:
        if report.failed or report.skipped:
            self.not_passed.add(report.nodeid)
        if report.when == "teardown":
            self.finished.add(report.nodeid)

    def unused(self) -> list[Path]:
        out: list[Path] = []
        for entry in self.modules.values():
            items: dict[str, str] = entry["items"]
            folder = Path(entry["data_dir"])
            if any(n not in self.finished for n in items) or not folder.is_dir():
                continue
            spared = [stem for n, stem in items.items() if n in self.not_passed]
            for p in sorted(folder.glob("*.json")):
                if p.name.endswith(".obtained.json") or str(p) in self.used:
                    continue
                if any(p.stem == s or p.stem.startswith(f"{s}-") for s in spared):
                    continue
                out.append(p)
        return out
