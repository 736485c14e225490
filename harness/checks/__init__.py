"""Checks that are not slice-vs-baseline comparisons: a vector's absolute expectations,
cross-model drift, texture anchors (their measurements live in harness.measuring)."""
