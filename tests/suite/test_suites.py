import pytest

from harness.errors import ConfigError
from harness.suite.selection import find_suite, match_k
from harness.suite.suites import load_suite
from harness.project import builtin_dir

GOOD = '''
name = "mini"
seeds = [1, 2]
vectors = ["microprint_dilation"]

[pipelines.a]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''


def write(tmp_path, text, name="mini.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_suite_expands_to_permutations(tmp_path):
    s = load_suite(write(tmp_path, GOOD))
    ids = [c.id for c in s.cases()]
    assert ids == ["microprint_dilation/a/s1", "microprint_dilation/a/s2"]
    assert [c.id for c in s.cases(seeds=[7])] == ["microprint_dilation/a/s7"]
    assert s.pipelines[0].as_dict()["mask"] == {"backend": "shape", "dilate_px": 2}


def test_repo_suites_load_and_smoke_is_big_enough():
    smoke = load_suite("smoke")
    assert len(smoke.seeds) >= 3 and len(smoke.pipelines) >= 2 and len(smoke.vectors) >= 4
    assert len(smoke.cases()) >= 24
    nightly = load_suite("nightly")
    from harness.stages import backend_names

    models = load_suite("models")  # whole-image model rewrites, on the vector without anchors
    used = {(s.stage, s.backend) for suite in (nightly, models) for p in suite.pipelines for s in p.stages}
    for stage in ("generate", "detect", "mask", "inpaint", "denoise", "upscale"):
        implicit = {"source"} if stage == "generate" else set()  # the default when a pipeline has no generate
        assert {(stage, b) for b in backend_names(stage) if b not in implicit} <= used, stage
    from harness.suite.vectors import discover

    assert set(nightly.vectors) == set(discover(builtin_dir("vectors")))


@pytest.mark.parametrize("change,msg", [
    (("vectors = [\"microprint_dilation\"]", "vectors = [\"nope\"]"), r"vectors: unknown vector 'nope'; known: "),
    (("backend = \"telea\"", "backend = \"lama\""), r"pipelines.a.inpaint: unknown inpaint backend 'lama'; allowed: "),
    (("dilate_px = 2", "dilate_px = -1"), r"pipelines.a.mask: .*dilate_px=-1 is out of range"),
    (("dilate_px = 2", "dilation = 2"), r"unknown parameter 'dilation'; allowed: "),
    (("seeds = [1, 2]", "seeds = [1, 1]"), r"seeds: duplicate seeds"),
    (("seeds = [1, 2]", "seeds = \"1\""), r"seeds: expected a non-empty list of integers"),
    (("name = \"mini\"", "name = \"mini\"\nmode = \"median\""), r"mode: 'median' is not allowed; choose one of: paired, distribution"),
    (("name = \"mini\"", "name = \"mini\"\ncolour = 1"), r"colour: unknown key; allowed: "),
    (("detect =", "detekt ="), r"pipelines.a.detekt: unknown stage; allowed: generate, detect"),
])
def test_bad_suites_name_file_key_and_allowed_values(tmp_path, change, msg):
    p = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match=msg) as exc:
        load_suite(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("change,msg", [
    (("seeds = [1, 2]", "seeds = [true, 2]"), r"seeds: expected a non-empty list of integers >= 0, got \[True, 2\]$"),
    (("name = \"mini\"", "name = \"mini\"\nthreads = true"), r"threads: expected an integer >= 1, got True$"),
    (("name = \"mini\"", "name = \"mini\"\nthreads = 0"), r"threads: expected an integer >= 1, got 0$"),
    (("name = \"mini\"", "name = \"mini\"\nmeasure = { ring = true }"), r"measure\.ring: expected an integer >= 1"),
    (("name = \"mini\"", "name = \"mini\"\nmeasure = { tile = 9 }"), r"measure\.tile: expected an even integer >= 8"),
    (("name = \"mini\"", "name = \"mini\"\nmeasure = { tiles = 8 }"),
     r"measure\.tiles: unknown key; allowed: tile, ring$"),
    (("name = \"mini\"", "name = \"mini\"\nmeasure = 3"), r"measure: expected a table, got int$"),
    (("name = \"mini\"", "name = \"mini\"\ncompare = { k = 0 }"),
     r"compare\.k: expected a number in \(0, 100\), got 0$"),
    (("name = \"mini\"", "name = \"mini\"\ncompare = { kk = 1 }"), r"compare\.kk: unknown key; allowed: k, spread_k$"),
    (("name = \"mini\"", "name = \"mini\"\ntolerances = 1"),
     r"tolerances: expected an array of tables \(\[\[tolerances\]\]\), got int$"),
])
def test_suite_values_are_read_like_vector_values(tmp_path, change, msg):
    """Suite keys go through harness.validate: bool is not an integer; messages are "<file>: <key>: <problem>"."""
    p = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match="^" + str(p).replace(".", r"\.") + ": " + msg):
        load_suite(p)


def test_bad_stage_parameter_in_a_suite_names_file_key_parameter_and_range(tmp_path):
    p = write(tmp_path, GOOD.replace("dilate_px = 2", "dilate_px = true"))
    with pytest.raises(ConfigError, match="^" + str(p).replace(".", r"\.") + r": pipelines\.a\.mask: mask backend "
                                          r"'shape': dilate_px=True is invalid; allowed: an integer \[0, 64\]$"):
        load_suite(p)


def test_bad_tolerances(tmp_path):
    p = write(tmp_path, GOOD + '\n[[tolerances]]\nmetric = "sharpness"\nrel_tol = 0.1\n')
    with pytest.raises(ConfigError, match=r"tolerances\[0\].metric: unknown metric 'sharpness'; allowed: "):
        load_suite(p)
    p = write(tmp_path, GOOD + '\n[[tolerances]]\nmetric = "band_power"\nrel_tol = -1\n')
    with pytest.raises(ConfigError, match=r"tolerances\[0\]: rel_tol must be a finite number >= 0"):
        load_suite(p)


def test_invalid_toml_and_missing_suite(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_suite(write(tmp_path, "name = ["))
    with pytest.raises(ConfigError, match=r"--suite .nosuch.: no such suite in .*; known: model_swap, models, nightly, smoke"):
        find_suite("nosuch", [builtin_dir("vectors") / "suites"])
    with pytest.raises(ConfigError, match="suite file not found"):
        find_suite(str(tmp_path / "x.toml"), [])


def test_k_expressions():
    cid = "receipt_microprint/classic/s2"
    assert match_k("receipt", cid)
    assert match_k("receipt and not ocr", cid)
    assert not match_k("watermark or s3", cid)
    assert match_k("(watermark or classic) and s2", cid)
    with pytest.raises(ConfigError, match="not a valid expression"):
        match_k("receipt and", cid)


TWO = GOOD.replace('vectors = ["microprint_dilation"]', 'vectors = ["microprint_dilation", "watermark_grass"]') + '''
[pipelines.b]
vectors = ["watermark_grass"]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "ns" }
'''


def test_a_pipeline_may_name_its_own_vectors(tmp_path):
    s = load_suite(write(tmp_path, TWO))
    assert [c.id for c in s.cases(seeds=[1])] == ["microprint_dilation/a/s1", "watermark_grass/a/s1",
                                                  "watermark_grass/b/s1"]
    assert "vectors" not in s.pipelines[1].as_dict()  # not a stage: never part of a stage config or cache key


@pytest.mark.parametrize("change,msg", [
    (('vectors = ["watermark_grass"]\ndetect', 'vectors = ["caption_portrait"]\ndetect'),
     r"pipelines\.b\.vectors: vector 'caption_portrait' is not among the suite's vectors"),
    (('vectors = ["watermark_grass"]\ndetect', 'vectors = []\ndetect'), r"pipelines\.b\.vectors: expected a non-empty"),
])
def test_bad_pipeline_vectors(tmp_path, change, msg):
    with pytest.raises(ConfigError, match=msg):
        load_suite(write(tmp_path, TWO.replace(*change)))


SUITE_KEYS = GOOD + '''
[pipelines.b]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "ns" }
'''


def test_batch_rerun_distribution_and_cross_keys(tmp_path):
    text = SUITE_KEYS.replace('name = "mini"', 'name = "mini"\nbatch_seeds = 4\nrerun_check = true\n'
                              'distribution = { alpha = 0.05, detect_hue_deg = 4 }\n'
                              'cross = [{ a = "a", b = "b", max_hue_deg = 5 }]')
    s = load_suite(write(tmp_path, text))
    assert (s.batch_seeds, s.rerun_check) == (4, True)
    assert (s.distribution.alpha, s.distribution.detect_hue_deg, s.distribution.power) == (0.05, 4.0, 0.8)
    assert [(c.a, c.b, c.stage, c.max_hue_deg, c.max_hf_rel) for c in s.cross] == [("a", "b", "generate", 5.0, 0.25)]
    d = load_suite(write(tmp_path, SUITE_KEYS, "plain.toml"))
    assert (d.batch_seeds, d.rerun_check, d.cross) == (1, False, ())


@pytest.mark.parametrize("extra,msg", [
    ("batch_seeds = 0", r"batch_seeds: expected an integer in 1\.\.256"),
    ("rerun_check = 1", r"rerun_check: expected true or false"),
    ("distribution = { alpha = 0.9 }", r"distribution\.alpha: expected a number in \(0, 0\.5\]"),
    ("distribution = { beta = 1 }", r"distribution\.beta: unknown key"),
    ('cross = [{ a = "a", b = "zz" }]', r"cross\[0\]\.b: unknown pipeline 'zz'"),
    ('cross = [{ a = "a" }]', r"cross\[0\]\.b: missing"),
    ('cross = [{ a = "a", b = "a" }]', r"cross\[0\]\.b: a and b name the same pipeline"),
    ('cross = [{ a = "a", b = "b", stage = "mask" }]', r"cross\[0\]\.stage: 'mask' is not allowed"),
])
def test_bad_new_suite_keys(tmp_path, extra, msg):
    with pytest.raises(ConfigError, match=msg):
        load_suite(write(tmp_path, SUITE_KEYS.replace('name = "mini"', f'name = "mini"\n{extra}')))


def test_seed_ranges():
    from harness.suite.selection import parse_seeds

    assert parse_seeds("1,5-8") == [1, 5, 6, 7, 8] and parse_seeds("101-103") == [101, 102, 103]
    assert parse_seeds(None) is None
    for bad, msg in [("8-5", "runs backwards"), ("1-3,2", "named twice"), ("a-b", "integers or ranges"),
                     ("-1", "integers or ranges")]:
        with pytest.raises(ConfigError, match=msg):
            parse_seeds(bad)
