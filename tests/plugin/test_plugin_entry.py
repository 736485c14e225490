"""The plugin as pytest loads it: its options, its marker, a light import."""

import subprocess
import sys

pytest_plugins = ["pytester"]


def test_help_lists_the_harness_options_in_one_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "harness: image-pipeline regression checks:",
        "  --harness-suite=NAME|PATH",
        "*--harness-report=DIR*collect the cases of an existing run*",
        "*--harness-seeds=LIST*",
        "*--harness-k=EXPR*",
        "*--harness-out=DIR*",
        "  --harness-max-checks=N",
        "*--harness-regen*rewrite the baselines*",
        "  --harness-unused=[report|fail]",
    ])
    result.stdout.fnmatch_lines(["  harness_suites (linelist):*"])


def test_the_harness_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.harness: a harness suite case or a case of a harness report"])


def test_importing_the_plugin_imports_nothing_heavy():
    code = ("import sys, harness.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'PIL', 'scipy', 'skimage', 'cv2', "
            "'torch', 'pandas') or m.startswith(('harness.measuring', 'harness.run', 'harness.suite', 'harness.stages', 'harness.models', 'harness.checks', 'harness.comparing'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
