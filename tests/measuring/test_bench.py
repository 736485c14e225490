from harness.measuring.bench import bench_ratios


def test_bench_reports_positive_ratios_side_by_side():
    r = bench_ratios(size=64, repeats=2)
    assert set(r) >= {"measure_s", "measure_masked_s", "rfft2_3ch_s", "ssim_s", "measure_over_rfft2",
                      "measure_over_ssim", "measure_masked_over_rfft2", "measure_masked_over_ssim"}
    assert r["measure_over_rfft2"] > 0 and r["measure_over_ssim"] > 0
    assert r["measure_over_rfft2"] == r["measure_s"] / r["rfft2_3ch_s"]
    assert r["measure_masked_over_ssim"] == r["measure_masked_s"] / r["ssim_s"]


def test_bench_prints_both_cases_against_both_targets(capsys):
    from harness.measuring.bench import run_bench

    assert run_bench(size=64, repeats=1) == 0
    out = capsys.readouterr().out
    assert "measure(mask=5 %)" in out and out.count("target <= 3") == 2 and out.count("target <= 0.25") == 2
