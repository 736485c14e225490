"""One check, one line: where a spatial check lies shows in the line and in the table row."""

from harness.comparing.engine import Check
from harness.report.text import check_lines, format_box, format_check, table_header, table_row

BOXED = Check("band_power", "band=high tile=r7c9 ch=Y", 113.0, 171.0, -58.0, 16.0, "fail", (224, 192, 288, 256))
PLAIN = Check("band_power", "band=high ch=Y", 113.0, 171.0, -58.0, 16.0, "fail")


def test_format_check_names_the_pixel_box_of_a_spatial_slice():
    assert format_check(BOXED) == ("fail band_power [band=high tile=r7c9 ch=Y] @ x 224-288, y 192-256: "
                                   "113 vs baseline 171 (delta -58, tolerance 16)")
    assert format_check(PLAIN) == "fail band_power [band=high ch=Y]: 113 vs baseline 171 (delta -58, tolerance 16)"
    assert format_box(None) == "" and format_box((0, 1, 2, 3)) == "@ x 0-2, y 1-3"


def test_table_rows_keep_the_severity_last_and_line_up():
    header, boxed, plain = table_header(), table_row(BOXED), table_row(PLAIN)
    assert boxed.split()[-1] == plain.split()[-1] == "3.62"
    assert "x 224-288, y 192-256" in boxed and " - " in plain
    # columns line up under the header: the value column ends at the same place
    end = header.index("value") + len("value")
    assert boxed[:end].endswith("113") and plain[:end].endswith("113")


def test_check_lines_carry_the_box():
    lines = check_lines([PLAIN, BOXED, Check("hue", "offset", 0.1, 0.0, 0.1, 1.0, "pass")], limit=5)
    assert len(lines) == 2 and any("@ x 224-288, y 192-256" in ln for ln in lines)


def test_severity_line_says_how_many_tolerances_off_and_nothing_for_a_check_without_one():
    from harness.report.text import format_severity, severity_line

    assert severity_line(BOXED) == format_check(BOXED) + " = 3.6× tolerance"
    far = Check("band_power", "band=mid", 10.0, 148.9, -138.9, 8.286, "fail")
    assert format_severity(far) == "17× tolerance"
    missing = Check("band_power", "band=mid", None, None, None, None, "error")
    absolute = Check("stage_effect", "stage=mask effect=rejected", 0.0, 0.0, 0.0, 0.0, "fail")
    assert format_severity(missing) == format_severity(absolute) == ""
    assert severity_line(absolute) == format_check(absolute)
