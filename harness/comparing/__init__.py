"""Comparing measurements: the engine (paired, distribution), tolerances, and file pairing."""
