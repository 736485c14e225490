"""Measuring one image: slices (bands, tiles, mask regions, channels) and the metrics over them.

``driver.measure`` is the hot path; each module under ``metrics/`` owns one metric family and
its slice names; ``result.Measurement`` is what a measurement returns.
"""
