"""One case memo entry (:mod:`harness.run.case_memo`) as bytes: what a recorded case wrote, checksummed.

Layout: :data:`_MAGIC`, the sha256 (hex) of the body and a newline, then the body: an 8-byte
big-endian header length, the JSON header (schema, key, source run, case id, drift notes, blob
sizes) and the blobs (checks part, case record, measurement file).  :func:`unpack` refuses
(ValueError) anything torn, garbled or written for another key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["MEMO_SCHEMA", "Hit", "pack", "unpack"]

MEMO_SCHEMA = "harness-case-memo/1"  # bump when what goes into a key or an entry changes meaning
_MAGIC = b"HARNESS-CASE-MEMO/1\n"


@dataclass
class Hit:
    """A memo entry read back and verified: what to record for ``case_id``."""

    case_id: str
    key: str
    run: str  # the run it was recorded in
    drift: list[str]  # environment_drift of the case's baseline (the run's drift note)
    part: bytes  # checks/<slug>.parquet
    record: dict[str, Any]  # cases/<slug>.json, parsed
    measure: bytes | None  # cases/<slug>.measure.npz
    result: Any = None  # the record's CaseResult, once read


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(key: str, run: str, case_id: str, drift: list[str], part: bytes, record: bytes,
         measure: bytes | None) -> bytes:
    """An entry's bytes: magic, sha256 of the body, body (8-byte header length, JSON header, blobs)."""
    blobs = [part, record] + ([measure] if measure is not None else [])
    header = json.dumps({"schema": MEMO_SCHEMA, "key": key, "run": run, "case": case_id, "drift": sorted(drift),
                         "sizes": [len(b) for b in blobs]}).encode()
    body = len(header).to_bytes(8, "big") + header + b"".join(blobs)
    return _MAGIC + _sha(body).encode() + b"\n" + body


def unpack(key: str, data: bytes) -> Hit:
    """The entry in ``data`` for ``key``; ValueError when it is torn, garbled or not this key's."""
    head = len(_MAGIC)
    if data[:head] != _MAGIC or data[head + 64:head + 65] != b"\n":
        raise ValueError("not a case memo entry")
    body = data[head + 65:]
    if _sha(body).encode() != data[head:head + 64]:
        raise ValueError("checksum mismatch")
    n = int.from_bytes(body[:8], "big")
    header = json.loads(body[8:8 + n])
    sizes = header["sizes"]
    if header.get("schema") != MEMO_SCHEMA or header.get("key") != key or len(sizes) not in (2, 3):
        raise ValueError("another key's entry")
    if 8 + n + sum(sizes) != len(body):
        raise ValueError("wrong length")
    blobs, at = [], 8 + n
    for size in sizes:
        blobs.append(body[at:at + size])
        at += size
    record = json.loads(blobs[1])
    if not isinstance(record, dict) or not isinstance(header["run"], str) or not isinstance(header["drift"], list):
        raise ValueError("malformed header or record")
    return Hit(header["case"], key, header["run"], [str(d) for d in header["drift"]], blobs[0], record,
               blobs[2] if len(blobs) == 3 else None)
