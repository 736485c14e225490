"""The CLIP tokenizer rebuilt from open-clip-torch's BPE file matches CLIP's reference ids."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from harness.pipeline.models.tokenizer import (
    VOCAB_SIZE,
    bpe_path,
    bytes_to_unicode,
    clip_tokenizer,
    clip_vocab_and_merges,
    write_tokenizer_files,
)


def test_bpe_file_is_found_without_importing_open_clip():
    import sys

    assert bpe_path().name == "bpe_simple_vocab_16e6.txt.gz"
    assert "open_clip" not in sys.modules


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
