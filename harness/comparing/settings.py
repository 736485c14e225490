"""Settings of the comparison modes that a suite declares and the engine reads.

:class:`DistributionConfig` is a suite's ``[distribution]`` table; it lives here, beside the
engine that reads it (:mod:`harness.comparing.distribution`), so the comparing layer never
imports the suite layer above it (:mod:`harness.suite.suites` parses the table into it).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DistributionConfig"]


@dataclass(frozen=True)
class DistributionConfig:
    """A suite's ``[distribution]`` table: how seed distributions are tested (distribution mode).

    ``alpha``: the family-wise false-alarm rate of one group's comparison (all its slices; 3 %:
    a nightly gate on an unchanged model may fail 5 % of nights, and a baked baseline's own
    sampling error adds to the test's level);
    ``power``: the probability of detecting a drift of the target size, used to report each
    check's smallest detectable drift and the seed count that would reach a target;
    ``detect_hue_deg`` / ``detect_band_rel``: the drifts the suite must be able to see (a hue
    rotation in degrees, a relative change of band energy); ``require_power``: fail (rather
    than note) when the seeds at hand cannot detect them, or when the baseline's self-check
    expects more false alarms than ``max_false_alarm``.

    A baseline is baked once and compared night after night, so its own sampling error is in
    every comparison: ``baseline_seeds`` (default: the suite's seeds) is how many seeds
    ``harness bake`` stores per group -- the suite's seeds, then the integers after the largest;
    ``selfcheck_seeds`` (default: as many as it bakes, at least twice the suite's seed count;
    0: off) held-out seeds, the
    integers after the baked ones, that bake renders, compares with the baked set in
    ``selfcheck_draws`` resampled candidate sets of the suite's size and never stores: the
    fraction of draws that fail is the false-alarm rate this baseline is expected to give
    (:mod:`harness.comparing.selfcheck`), recorded with the baseline and reported by every run
    against it; above ``max_false_alarm`` bake says so and names the seed count that would
    reach it."""

    alpha: float = 0.03
    power: float = 0.8
    detect_hue_deg: float = 6.0
    detect_band_rel: float = 0.1
    require_power: bool = True
    baseline_seeds: int | None = None
    selfcheck_seeds: int | None = None
    selfcheck_draws: int = 100
    max_false_alarm: float = 0.10
