"""A real CLIP tokenizer (``vocab.json`` + ``merges.txt``) rebuilt from CLIP's BPE file.

No tokenizer is downloaded: ``bpe_simple_vocab_16e6.txt.gz`` -- CLIP's BPE merges, the file
``open-clip-torch`` ships, copied unchanged into this package (``clip/``, with its NOTICE
and sha256) -- is read with gzip; open_clip is never imported or needed.  The vocabulary is
rebuilt the way CLIP's ``SimpleTokenizer`` does it:
the 256 byte tokens (GPT-2 ``bytes_to_unicode`` order), the same with ``</w>``, one
token per merge (the first ``49152 - 256 - 2`` merge lines after the header), then
``<|startoftext|>`` and ``<|endoftext|>``: 49,408 tokens, so
``"a photo of a cat"`` -> ``[49406, 320, 1125, 539, 320, 2368, 49407]``.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

from harness.errors import ConfigError

__all__ = [
    "BPE_NAME",
    "VOCAB_SIZE",
    "bpe_path",
    "bytes_to_unicode",
    "clip_tokenizer",
    "clip_vocab_and_merges",
    "write_tokenizer_files",
]

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_SIZE = 49408
_N_MERGES = 49152 - 256 - 2


BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


def bpe_path() -> Path:
    """The BPE file shipped in this package (``harness/models/clip/``)."""
    from importlib.resources import files

    p = Path(str(files("harness.models").joinpath("clip", BPE_NAME)))
    if not p.is_file():
        raise ConfigError(f"{p}: the CLIP BPE file is missing from this harness installation; reinstall harness")
    import hashlib

    if hashlib.sha256(p.read_bytes()).hexdigest() != BPE_SHA256:
        raise ConfigError(f"{p}: the CLIP BPE file is damaged (sha256 differs from the shipped one); reinstall harness")
    return p


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP's reversible byte -> printable unicode character table (in CLIP's order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def clip_vocab_and_merges(path: Path | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``(vocab, merges)`` exactly as CLIP's SimpleTokenizer builds them."""
    with gzip.open(path or bpe_path()) as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:_N_MERGES + 1]]
    tokens = list(bytes_to_unicode().values())
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    if len(tokens) != VOCAB_SIZE:
        raise ConfigError(f"{path or bpe_path()}: rebuilt {len(tokens)} CLIP tokens, expected {VOCAB_SIZE}")
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder`` (atomically, each); return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges()
    out = []
    for name, text in (("vocab.json", json.dumps(vocab, ensure_ascii=False)),
                       ("merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, folder / name)
        out.append(folder / name)
    return out[0], out[1]


def clip_tokenizer(folder: Path, model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` over the rebuilt files (written into ``folder`` if missing)."""
    from harness.models.offline import force_offline

    force_offline()
    from transformers import CLIPTokenizer

    folder = Path(folder)
    if not ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()):
        write_tokenizer_files(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=model_max_length)
