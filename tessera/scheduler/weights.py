"""Weighers: rank the candidates that passed the filters.

Each weigher gives, per candidate, the share of its capacity in use once the request is
placed (0 to 1, as the filters already held it within capacity). Spread scores a
candidate by how much stays free, pack by how full it gets; a share rather than an
absolute figure, so a 32-host cluster does not win every spread decision by size alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from tessera.scheduler.model import Candidate, PlacementRequest, Strategy


class Weigher(ABC):
    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    @abstractmethod
    def utilisation(
        self, request: PlacementRequest, candidates: Sequence[Candidate]
    ) -> list[float]:
        """Share of each candidate's (overcommitted) capacity in use after placement."""


class RamWeigher(Weigher):
    def utilisation(
        self, request: PlacementRequest, candidates: Sequence[Candidate]
    ) -> list[float]:
        need = request.memory_mib
        ratio = request.overcommit.ram
        return [(c.memory_mib_used + need) / (c.memory_mib * ratio or 1) for c in candidates]


class CpuWeigher(Weigher):
    def utilisation(
        self, request: PlacementRequest, candidates: Sequence[Candidate]
    ) -> list[float]:
        need = request.vcpus
        ratio = request.overcommit.cpu
        return [(c.vcpus_used + need) / (c.cpu_cores * ratio or 1) for c in candidates]


DEFAULT_WEIGHERS: tuple[Weigher, ...] = (RamWeigher(1.0), CpuWeigher(0.5))


def scores(
    request: PlacementRequest,
    candidates: Sequence[Candidate],
    weighers: Sequence[Weigher] = DEFAULT_WEIGHERS,
) -> list[float]:
    """One score per candidate in [0, 1], higher is better for the request's strategy."""
    total = sum(w.multiplier for w in weighers) or 1.0
    result = [0.0] * len(candidates)
    for weigher in weighers:
        share = weigher.multiplier / total
        used = weigher.utilisation(request, candidates)
        if request.strategy is Strategy.SPREAD:
            result = [s + share * (1.0 - u) for s, u in zip(result, used, strict=True)]
        else:
            result = [s + share * u for s, u in zip(result, used, strict=True)]
    return result
