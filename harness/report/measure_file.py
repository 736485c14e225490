"""A case's measurement beside its record: ``cases/<slug>.measure.npz``, float arrays, not JSON text.

A measurement document (``Measurement.to_dict()``: ``{"meta", "metrics": {name: {"slices",
"values", "std", "bias"}}}``) was most of a version-1 case record (about 1.3 MB of JSON per
smoke case).  Here its numbers are float64 arrays (``v<i>``, ``s<i>``, ``b<i>`` for the i-th
metric: values, std, bias, exactly the floats of the document, so a resumed run or a bake
compares the same numbers) and everything else (meta, metric names, slice names) one JSON
string (``doc``), all in one compressed ``.npz`` (``allow_pickle`` never).

The case record names the file and its sha256 (``{"file", "sha256"}``): a sidecar that is
missing, truncated or not the one recorded is an :class:`~harness.errors.InputError` naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Any

from harness.errors import InputError

__all__ = ["SUFFIX", "measure_bytes", "read_measure"]

SUFFIX = ".measure.npz"
_ARRAYS = (("values", "v"), ("std", "s"), ("bias", "b"))


def measure_bytes(doc: dict[str, Any]) -> tuple[bytes, str]:
    """The ``.npz`` bytes of a measurement document and their sha256."""
    import numpy as np

    rest = {k: v for k, v in doc.items() if k != "metrics"}
    names, metrics, arrays = [], {}, {}
    for i, (name, m) in enumerate((doc.get("metrics") or {}).items()):
        names.append(name)
        metrics[name] = {k: v for k, v in m.items() if k not in dict(_ARRAYS)}
        for key, short in _ARRAYS:
            if key in m:
                arrays[f"{short}{i}"] = np.array([math.nan if x is None else x for x in m[key]], np.float64)
    text = json.dumps({"rest": rest, "names": names, "metrics": metrics}, allow_nan=False)
    arrays["doc"] = np.frombuffer(text.encode("utf-8"), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def read_measure(path: Path, sha256: str) -> dict[str, Any]:
    """The measurement document in ``path``, checked against its recorded ``sha256``."""
    import numpy as np

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the case's measurement ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"{path}: not the measurement its case record names (sha256 differs): truncated or replaced")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            head = json.loads(bytes(z["doc"]).decode("utf-8"))
            doc = dict(head["rest"])
            doc["metrics"] = {}
            for i, name in enumerate(head["names"]):
                m = dict(head["metrics"][name])
                for key, short in _ARRAYS:
                    if f"{short}{i}" in z:
                        m[key] = [None if math.isnan(x) else x for x in z[f"{short}{i}"].tolist()]
                doc["metrics"][name] = m
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise InputError(f"{path}: malformed measurement file ({exc})") from None
    return doc

