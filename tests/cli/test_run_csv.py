"""`harness run --csv`: checks.csv only on request, the same checks as checks.parquet."""

import csv
from pathlib import Path

from harness.cli import main
from cli_suite import classical_suite


def test_checks_csv_only_with_csv_and_row_for_row_the_parquet(tmp_path, capsys):
    import pyarrow.parquet as pq

    suite = tmp_path / "csvrun.toml"
    suite.write_text(classical_suite("csvrun", denoise=0.45))
    base = ["run", "--suite", str(suite), "--baselines", str(tmp_path / "b"), "--no-cache", "-q",
            "--store", str(tmp_path / "store")]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 1  # no baseline: the absolute checks only
    assert main([*base, "--out", str(tmp_path / "csv"), "--csv"]) == 1
    plain = next((tmp_path / "plain").iterdir())
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert not (plain / "checks.csv").exists() and (run / "checks.csv").is_file()
    with open(run / "checks.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = pq.read_table(run / "checks.parquet", columns=["case", "metric", "slice", "status"])
    assert [(r["case"], r["metric"], r["slice"], r["status"]) for r in rows] == \
        [tuple(r.values()) for r in table.to_pylist()]
    assert rows[0]["case"] == "caption_portrait/p/s1" and rows[0]["seed"] == "1" and len(rows) == table.num_rows
