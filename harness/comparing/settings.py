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

    ``alpha``: the family-wise false-alarm rate of one group's comparison (all its slices);
    ``power``: the probability of detecting a drift of the target size, used to report each
    check's smallest detectable drift and the seed count that would reach a target;
    ``detect_hue_deg`` / ``detect_band_rel``: the drifts the suite must be able to see (a hue
    rotation in degrees, a relative change of band energy); ``require_power``: fail (rather
    than note) when the seeds at hand cannot detect them."""

    alpha: float = 0.01
    power: float = 0.8
    detect_hue_deg: float = 6.0
    detect_band_rel: float = 0.1
    require_power: bool = True
