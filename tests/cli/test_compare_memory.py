"""`harness compare --json` streams its document: the very text of one json.dumps, check by check."""

import json


import cases
from harness.cli import main
from harness.comparing.files import compare_paths
from harness.imageio import save_png


def test_streamed_json_is_the_text_of_one_dumps(tmp_path, capsys):
    base, cand = tmp_path / "base", tmp_path / "cänd"  # a non-ASCII path is escaped the same way
    img = cases.image("coffee", 96)
    save_png(base / "ok.png", img)
    save_png(cand / "ok.png", cases.jitter(img))
    save_png(base / "sub" / "bad.png", img)
    save_png(cand / "sub" / "bad.png", cases.texture_loss(img))
    save_png(base / "only.png", img)  # an error pair: no candidate, no checks, no reference
    result = compare_paths(base, cand)
    whole = json.dumps(result.to_dict(), allow_nan=False)
    assert "".join(result.iter_json()) == whole
    assert [p.status for p in result.pairs] == ["pass", "error", "fail"]  # ok, only, sub/bad
    code = main(["compare", str(base), str(cand), "--json"])
    out = capsys.readouterr().out
    assert code == 1 and out == whole + "\n"


def test_streamed_json_writes_non_finite_figures_as_dumps_does(tmp_path):
    from dataclasses import replace

    img = cases.image("brick", 64)
    save_png(tmp_path / "a.png", img)
    result = compare_paths(tmp_path / "a.png", tmp_path / "a.png")
    result.pairs[0].checks[0] = replace(result.pairs[0].checks[0], value=float("nan"))
    assert result.pairs[0].reference["psnr"] == float("inf")  # identical images
    text = "".join(result.iter_json())
    assert text == json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(text)["pairs"][0]["reference"]["psnr"] is None
