"""`harness compare`: the contract (exit codes, --json document) and every bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

import cases
from harness.cli import main
from harness.imageio import save_png


@pytest.fixture()
def tree(tmp_path):
    base, cand = tmp_path / "base", tmp_path / "cand"
    img = cases.image("coffee", 96)
    save_png(base / "ok.png", img)
    save_png(cand / "ok.png", cases.jitter(img))
    save_png(base / "sub" / "bad.png", img)
    save_png(cand / "sub" / "bad.png", cases.texture_loss(img))
    return tmp_path, img


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_two_identical_files_pass_with_exit_0(tmp_path, capsys):
    img = cases.image("brick", 64)
    save_png(tmp_path / "a.png", img)
    code, out, _ = run(capsys, "compare", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "-q")
    assert code == 0
    assert out.splitlines()[-1] == "PASS: 1 pair(s): 1 passed, 0 failed, 0 errors"


def test_directory_compare_json_follows_the_contract(tree, capsys):
    root, _ = tree
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json")
    assert code == 1
    doc = json.loads(out)
    assert set(doc) == {"status", "pairs"} and doc["status"] == "fail"
    assert [p["status"] for p in doc["pairs"]] == ["pass", "fail"]
    for p in doc["pairs"]:
        assert {"baseline", "candidate", "status", "error", "checks"} <= set(p)
        assert p["error"] is None
        c = p["checks"][0]
        assert set(c) == {"metric", "slice", "value", "baseline", "delta", "tolerance", "status"}
    assert doc["pairs"][1]["candidate"].endswith("sub/bad.png")


def test_table_lists_worst_checks_first(tree, capsys):
    root, _ = tree
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "-q")
    assert code == 1
    rows = [ln.split() for ln in out.splitlines() if ln.strip().startswith("fail ")]
    sev = [float(r[-1]) for r in rows]
    assert sev and sev == sorted(sev, reverse=True)


def test_one_sided_files_are_error_pairs_not_skipped(tree, capsys):
    root, img = tree
    save_png(root / "cand" / "extra.png", img)
    save_png(root / "base" / "gone.png", img)
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json")
    doc = json.loads(out)
    errs = {p["candidate"].rsplit("/", 1)[-1]: p["error"] for p in doc["pairs"] if p["status"] == "error"}
    assert "no baseline image" in errs["extra.png"] and "no candidate image" in errs["gone.png"]
    assert code == 1 and doc["status"] == "error"


def test_corrupt_file_in_a_directory_is_reported_and_others_still_run(tree, capsys):
    root, _ = tree
    data = (root / "base" / "ok.png").read_bytes()
    (root / "cand" / "trunc.png").write_bytes(data[: len(data) // 3])
    save_png(root / "base" / "trunc.png", cases.image("coffee", 96))
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json")
    doc = json.loads(out)
    by = {p["candidate"].rsplit("/", 1)[-1]: p for p in doc["pairs"]}
    assert "corrupt or truncated" in by["trunc.png"]["error"]
    assert by["ok.png"]["status"] == "pass" and by["bad.png"]["status"] == "fail"
    assert code == 2


@pytest.mark.parametrize("case", ["truncated", "not_an_image", "missing", "size_mismatch", "directory_vs_file"])
def test_bad_single_inputs_exit_2_with_one_line_naming_the_file(tmp_path, capsys, case):
    good = tmp_path / "good.png"
    save_png(good, cases.image("coffee", 64))
    other = tmp_path / "other.png"
    if case == "truncated":
        other.write_bytes(good.read_bytes()[:100])
        expect = "corrupt or truncated"
    elif case == "not_an_image":
        other.write_text("hello")
        expect = "not an image file"
    elif case == "missing":
        expect = "does not exist"
    elif case == "size_mismatch":
        save_png(other, cases.image("coffee", 48))
        expect = "64x64 but the baseline is 48x48"
        good, other = other, good
    else:
        other = tmp_path / "dir"
        other.mkdir()
        expect = "cannot compare a file"
    code, out, err = run(capsys, "compare", str(good), str(other), "-q")
    assert code == 2
    text = out + err
    assert expect in text
    assert "Traceback" not in text


def test_mask_size_mismatch_and_mask_directory(tmp_path, capsys):
    img = cases.image("coffee", 64)
    save_png(tmp_path / "a.png", img)
    save_png(tmp_path / "m_small.png", np.zeros((32, 32), np.uint8))
    code, out, _ = run(capsys, "compare", str(tmp_path / "a.png"), str(tmp_path / "a.png"),
                       "--mask", str(tmp_path / "m_small.png"), "-q")
    assert code == 2 and "mask is 32x32 but the image is 64x64" in out
    # masks matched by relative path
    for side in ("b", "c"):
        save_png(tmp_path / side / "x.png", img)
    m = np.zeros((64, 64), np.uint8)
    m[20:40, 20:40] = 255
    save_png(tmp_path / "masks" / "x.png", m)
    code, out, _ = run(capsys, "compare", str(tmp_path / "b"), str(tmp_path / "c"),
                       "--mask", str(tmp_path / "masks"), "--json")
    doc = json.loads(out)
    assert code == 0
    assert any(c["metric"] == "seam_step" for c in doc["pairs"][0]["checks"])


def test_empty_mask_is_an_input_error(tmp_path, capsys):
    save_png(tmp_path / "a.png", cases.image("coffee", 64))
    save_png(tmp_path / "m.png", np.zeros((64, 64), np.uint8))
    code, out, _ = run(capsys, "compare", str(tmp_path / "a.png"), str(tmp_path / "a.png"),
                       "--mask", str(tmp_path / "m.png"), "-q")
    assert code == 2 and "mask is empty" in out


def test_empty_directory_and_unsupported_mode_exit_2(tmp_path, capsys):
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2").mkdir()
    code, _, err = run(capsys, "compare", str(tmp_path / "e1"), str(tmp_path / "e2"))
    assert code == 2 and "no images found" in err
    code, _, err = run(capsys, "compare", str(tmp_path / "e1"), str(tmp_path / "e2"), "--mode", "median")
    assert code == 2 and "--mode 'median' is not supported; choose one of: paired, distribution" in err


def test_distribution_mode_over_seed_directories(tmp_path, capsys):
    img = cases.image("chelsea", 96)
    for i in range(3):
        save_png(tmp_path / "b" / "cat" / f"seed{i}.png", cases.jitter(img, i))
        save_png(tmp_path / "ok" / "cat" / f"seed{i}.png", cases.jitter(img, 10 + i))
        save_png(tmp_path / "bad" / "cat" / f"seed{i}.png", cases.jitter(cases.hue_drift(img, 5.0), 20 + i))
    code, out, _ = run(capsys, "compare", str(tmp_path / "b"), str(tmp_path / "ok"), "--mode", "distribution", "--json")
    assert code == 0 and json.loads(out)["pairs"][0]["baseline"].endswith("b/cat")
    code, out, _ = run(capsys, "compare", str(tmp_path / "b"), str(tmp_path / "bad"), "--mode", "distribution", "--json")
    assert code == 1 and json.loads(out)["status"] == "fail"
    code, _, err = run(capsys, "compare", str(tmp_path / "b" / "cat" / "seed0.png"),
                       str(tmp_path / "ok" / "cat" / "seed0.png"), "--mode", "distribution")
    assert code == 2 and "needs two directories" in err


def test_usage_errors_exit_2():
    assert main([]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["compare"])
    assert exc.value.code == 2


def test_console_script_help_is_fast_and_explains():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "matched by relative path" in out.stdout
    assert "Exit codes" in out.stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, harness.cli; "
                            "print(any(m in sys.modules for m in ('torch', 'scipy', 'cv2', 'diffusers')))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False"


def test_tolerance_file_relaxes_or_tightens_checks(tmp_path, capsys):
    img = cases.image("coffee", 96)
    save_png(tmp_path / "a.png", img)
    save_png(tmp_path / "b.png", cases.texture_loss(img))
    a, b = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    assert run(capsys, "compare", a, b, "-q")[0] == 1
    loose = tmp_path / "loose.toml"
    loose.write_text('[[tolerances]]\nmetric = "band_power"\ngating = false\n'
                     '[[tolerances]]\nmetric = "contrast"\nrel_tol = 0.5\n'
                     '[[tolerances]]\nmetric = "spectrum"\ngating = false\n')
    code, out, _ = run(capsys, "compare", a, b, "--tolerances", str(loose), "--json")
    failing = {c["metric"] for c in json.loads(out)["pairs"][0]["checks"] if c["status"] == "fail"}
    assert "band_power" not in failing and "contrast" not in failing
    bad = tmp_path / "bad.toml"
    bad.write_text('[[tolerances]]\nmetric = "sharpness"\n')
    code, _, err = run(capsys, "compare", a, b, "--tolerances", str(bad))
    assert code == 2 and "tolerances[0].metric: unknown metric 'sharpness'" in err
    bad.write_text('[compare]\nk = "four"\n')
    code, _, err = run(capsys, "compare", a, b, "--tolerances", str(bad))
    assert code == 2 and "compare.k: expected a number in (0, 100), got 'four'" in err


def test_workers_give_the_same_document(tree, capsys):
    root, _ = tree
    code1, out1, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json")
    code2, out2, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json", "--workers", "2")
    assert code1 == code2 == 1 and json.loads(out1) == json.loads(out2)
    code, _, err = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--workers", "0")
    assert code == 2 and "--workers must be >= 1" in err



# --- 16-bit data, EXIF orientation, broken links, the pixel limit -----------------------------

def _write16(path, rgb):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def test_16bit_pair_differing_only_in_the_low_byte_fails(tmp_path, capsys):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:96]
    hi = np.repeat((60 + (xx + yy) // 2).astype(np.uint16)[..., None], 3, axis=2) << 8
    base = hi | np.clip(rng.normal(128, 50, hi.shape), 0, 255).astype(np.uint16)  # grain below 1/255
    cand = base.copy()
    cand[24:72, 24:72] = hi[24:72, 24:72] | 128  # the grain erased, the high byte untouched
    _write16(tmp_path / "b.png", base)
    _write16(tmp_path / "c.png", cand)
    code, out, _ = run(capsys, "compare", str(tmp_path / "b.png"), str(tmp_path / "c.png"), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "fail"
    assert doc["pairs"][0]["reference"]["psnr"] is not None  # finite: measured at 16 bits, not inf
    code, out, _ = run(capsys, "compare", str(tmp_path / "b.png"), str(tmp_path / "c.png"), "-q")
    assert code == 1 and "psnr inf" not in out


def test_exif_rotated_candidate_compares_as_it_displays(tmp_path, capsys):
    from PIL import Image

    img = cases.image("coffee", 96)[:, :64]  # 96 high, 64 wide as displayed
    save_png(tmp_path / "b.png", img)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90 degrees clockwise; displayed after turning it back
    Image.fromarray(np.ascontiguousarray(np.rot90(img, -1))).save(tmp_path / "c.png", exif=exif.tobytes())
    code, out, _ = run(capsys, "compare", str(tmp_path / "b.png"), str(tmp_path / "c.png"), "--json")
    assert code == 0, out
    assert json.loads(out)["pairs"][0]["reference"]["psnr"] is None  # identical pixels (inf → null)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_broken_links_in_a_folder_are_error_pairs_in_table_and_json(tree, capsys):
    import os

    root, _ = tree
    save_png(root / "base" / "dead.png", cases.image("coffee", 96))
    os.symlink(root / "nowhere.png", root / "cand" / "dead.png")
    os.symlink("loop.png", root / "cand" / "loop.png")
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "--json")
    by = {p["candidate"].rsplit("/", 1)[-1]: p for p in json.loads(out)["pairs"]}
    assert set(by) == {"ok.png", "bad.png", "dead.png", "loop.png"}
    assert by["dead.png"]["status"] == "error" and by["dead.png"]["error"].startswith("broken link: ")
    assert "does not exist" in by["dead.png"]["error"]
    assert by["loop.png"]["status"] == "error" and "symbolic link loop" in by["loop.png"]["error"]
    assert by["ok.png"]["status"] == "pass" and by["bad.png"]["status"] == "fail"
    assert code == 2  # as a corrupt file in a folder
    code, out, _ = run(capsys, "compare", str(root / "base"), str(root / "cand"), "-q")
    assert code == 2 and "error: broken link: " in out and "2 errors" in out.splitlines()[-1]


def test_header_claiming_50000_squared_is_refused_fast_with_exit_2(tmp_path, capsys):
    import struct
    import time
    import zlib

    save_png(tmp_path / "a.png", cases.image("coffee", 64))
    d = bytearray((tmp_path / "a.png").read_bytes())
    d[16:24] = struct.pack(">II", 50000, 50000)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(d))
    t = time.perf_counter()
    code, out, err = run(capsys, "compare", str(tmp_path / "a.png"), str(tmp_path / "bomb.png"), "-q")
    assert time.perf_counter() - t < 1.0
    assert code == 2
    line = [ln for ln in out.splitlines() if "bomb.png" in ln and "error:" in ln]
    assert line and "50000x50000" in line[0] and "limit of 16777216 pixels" in line[0]
    assert "--max-pixels" in line[0] and "Traceback" not in out + err


def test_max_pixels_option_and_environment(tmp_path, capsys, monkeypatch):
    save_png(tmp_path / "a.png", cases.image("coffee", 64))
    a = str(tmp_path / "a.png")
    code, out, _ = run(capsys, "compare", a, a, "-q", "--max-pixels", "4000")
    assert code == 2 and "a.png: image is 64x64" in out and "limit of 4000 pixels" in out
    assert run(capsys, "compare", a, a, "-q", "--max-pixels", "64x64")[0] == 0
    monkeypatch.setenv("HARNESS_MAX_PIXELS", "100")
    assert run(capsys, "compare", a, a, "-q")[0] == 2
    assert run(capsys, "compare", a, a, "-q", "--max-pixels", "0")[0] == 0  # the option wins; 0: no limit
    code, _, err = run(capsys, "compare", a, a, "--max-pixels", "huge")
    assert code == 2 and "--max-pixels: expected a pixel count" in err and "Traceback" not in err
