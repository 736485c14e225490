"""Measuring one image: slices (bands, tiles, mask regions, channels) and the metrics over them.

``driver.measure`` is the hot path, a list of metric calls; ``context.prepare`` validates the
input (``inputs``) and computes what the metrics share once.  A slice is a frequency band
(``bands``), a location (the whole image, a ``tiles`` tile or a ``regions`` mask region) and a
channel (``channels``); ``slices.slice_name`` spells its name.  Each module under ``metrics/``
owns one metric family and its slice names; ``result.Measurement`` is what a measurement returns.
"""
