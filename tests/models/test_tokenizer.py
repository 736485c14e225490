"""The CLIP tokenizer rebuilt from CLIP's BPE file (shipped in harness, copied from open-clip-torch)
matches CLIP's reference ids."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from harness.models.tokenizer import (
    VOCAB_SIZE,
    bpe_path,
    bytes_to_unicode,
    clip_tokenizer,
    clip_vocab_and_merges,
    write_tokenizer_files,
)


def test_bpe_file_ships_with_harness_and_is_checked(tmp_path, monkeypatch):
    import sys

    from harness.errors import ConfigError
    from harness.models import tokenizer

    p = bpe_path()
    assert p.name == "bpe_simple_vocab_16e6.txt.gz" and "harness" in p.parts
    assert "open_clip" not in sys.modules
    damaged = tmp_path / "clip" / p.name
    damaged.parent.mkdir()
    damaged.write_bytes(p.read_bytes()[:-10])

    class Files:
        def joinpath(self, *parts):
            return tmp_path.joinpath(*parts)

    monkeypatch.setattr("importlib.resources.files", lambda pkg: Files())
    with pytest.raises(ConfigError, match="damaged"):
        tokenizer.bpe_path()


def test_vocab_layout_is_clips():
    vocab, merges = clip_vocab_and_merges()
    assert len(vocab) == VOCAB_SIZE == 49408 and len(merges) == 49152 - 256 - 2
    b2u = list(bytes_to_unicode().values())
    assert vocab[b2u[0]] == 0 and vocab[b2u[0] + "</w>"] == 256
    assert vocab["".join(merges[0])] == 512
    assert vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407


def test_reference_ids(tmp_path):
    tok = clip_tokenizer(tmp_path)
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(tok) == 49408
    v, m = tmp_path / "vocab.json", tmp_path / "merges.txt"
    assert len(json.loads(v.read_text(encoding="utf-8"))) == 49408
    assert m.read_text(encoding="utf-8").startswith("#version: 0.2\n")


def test_files_are_rewritten_identically(tmp_path):
    a = write_tokenizer_files(tmp_path / "a")
    b = write_tokenizer_files(tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
