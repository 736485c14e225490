"""harness.comparing.files: pairing folders, broken links, the pixel limit, 16-bit pairs."""

import os
import struct
import sys
import zlib

import numpy as np
import pytest

import cases
from harness.comparing.files import compare_paths
from harness.errors import ConfigError, InputError
from harness.imageio import save_png

cv2 = pytest.importorskip("cv2")
links = pytest.mark.skipif(sys.platform == "win32", reason="symlinks")


def low_byte_pair(n=96, seed=1):
    """Two 16-bit RGB images equal in their high byte: fine grain (under one 8-bit step) on a smooth
    gradient, erased from a central square of the candidate.  At 8 bits they are identical."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    hi = np.repeat((60 + (xx + yy) // 2).astype(np.uint16)[..., None], 3, axis=2)
    base = (hi << 8) | np.clip(rng.normal(128, 50, (n, n, 3)), 0, 255).astype(np.uint16)
    cand = base.copy()
    q = slice(n // 4, 3 * n // 4)
    cand[q, q] = (hi[q, q] << 8) | 128
    assert np.array_equal(base >> 8, cand >> 8)
    return base, cand


def write16(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


@pytest.fixture()
def tree(tmp_path):
    img = cases.image("coffee", 64)
    for side in ("b", "c"):
        save_png(tmp_path / side / "ok.png", img)
    return tmp_path, img


def test_16bit_pair_differing_below_8_bits_fails_with_a_finite_psnr(tmp_path):
    base, cand = low_byte_pair()
    write16(tmp_path / "b.png", base)
    write16(tmp_path / "c.png", cand)
    res = compare_paths(tmp_path / "b.png", tmp_path / "c.png")
    p = res.pairs[0]
    assert p.status == "fail" and res.exit_code == 1
    assert any(c.status == "fail" and c.metric == "band_power" for c in p.checks)
    assert np.isfinite(p.reference["psnr"]) and p.reference["psnr"] > 60
    # the same pair cut to 8 bits is identical: what the old reader reported
    save_png(tmp_path / "b8.png", (base >> 8).astype(np.uint8))
    save_png(tmp_path / "c8.png", (cand >> 8).astype(np.uint8))
    res8 = compare_paths(tmp_path / "b8.png", tmp_path / "c8.png")
    assert res8.exit_code == 0 and res8.pairs[0].reference["psnr"] == float("inf")
    # and a 16-bit image against itself passes
    assert compare_paths(tmp_path / "b.png", tmp_path / "b.png").exit_code == 0


@links
def test_broken_links_are_input_error_pairs_and_the_rest_still_runs(tree):
    root, img = tree
    save_png(root / "b" / "gone.png", img)
    os.symlink(root / "c" / "nowhere.png", root / "c" / "gone.png")  # dangling
    save_png(root / "b" / "sub" / "loop.png", img)
    (root / "c" / "sub").mkdir()
    os.symlink("loop.png", root / "c" / "sub" / "loop.png")  # points at itself
    os.symlink(root / "nowhere.png", root / "c" / "extra.png")  # broken and one-sided
    res = compare_paths(root / "b", root / "c")
    by = {os.path.basename(p.candidate): p for p in res.pairs}
    assert set(by) == {"ok.png", "gone.png", "loop.png", "extra.png"}
    assert by["ok.png"].status == "pass"
    for name, why in [("gone.png", "does not exist"), ("loop.png", "symbolic link loop"),
                      ("extra.png", "does not exist")]:
        p = by[name]
        assert p.status == "error" and p.input_error, name
        assert p.error.startswith("broken link: ") and name in p.error and why in p.error
    assert res.exit_code == 2 and res.status == "error"


@links
def test_broken_link_as_a_root_or_mask_names_the_link(tree):
    root, _ = tree
    os.symlink(root / "nowhere", root / "dead")
    with pytest.raises(InputError, match=r"candidate: broken link: .*dead -> .*nowhere does not exist"):
        compare_paths(root / "b", root / "dead")
    (root / "masks").mkdir()
    os.symlink(root / "nowhere.png", root / "masks" / "ok.png")
    res = compare_paths(root / "b", root / "c", mask=root / "masks")
    assert res.pairs[0].input_error and "broken link" in res.pairs[0].error


def test_over_the_limit_is_an_input_error_pair_even_with_workers(tree):
    root, _ = tree
    save_png(root / "b" / "big.png", cases.image("coffee", 96))
    save_png(root / "c" / "big.png", cases.image("coffee", 96))
    for workers in (1, 2):
        res = compare_paths(root / "b", root / "c", max_pixels=64 * 64, workers=workers)
        by = {os.path.basename(p.candidate): p for p in res.pairs}
        assert by["ok.png"].status == "pass"
        assert by["big.png"].input_error and "96x96" in by["big.png"].error and "limit of 4096" in by["big.png"].error
        assert res.exit_code == 2
    assert compare_paths(root / "b", root / "c", max_pixels=0).exit_code == 0
    with pytest.raises(ConfigError, match="--max-pixels"):
        compare_paths(root / "b", root / "c", max_pixels="big")


def test_a_claimed_50000_squared_header_in_a_folder_is_refused(tree):
    root, _ = tree
    p = root / "c" / "bomb.png"
    save_png(root / "b" / "bomb.png", cases.image("coffee", 64))
    d = bytearray((root / "b" / "bomb.png").read_bytes())
    d[16:24] = struct.pack(">II", 50000, 50000)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    p.write_bytes(bytes(d))
    res = compare_paths(root / "b", root / "c")
    bomb = next(q for q in res.pairs if q.candidate.endswith("bomb.png"))
    assert bomb.input_error and "50000x50000" in bomb.error and "not decoded" in bomb.error
    assert res.exit_code == 2
