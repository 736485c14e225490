from harness.measuring.bench import bench_ratios


def test_bench_reports_positive_ratios_side_by_side():
    r = bench_ratios(size=64, repeats=2)
    assert set(r) >= {"measure_s", "rfft2_3ch_s", "ssim_s", "measure_over_rfft2", "measure_over_ssim"}
    assert r["measure_over_rfft2"] > 0 and r["measure_over_ssim"] > 0
    assert r["measure_over_rfft2"] == r["measure_s"] / r["rfft2_3ch_s"]
