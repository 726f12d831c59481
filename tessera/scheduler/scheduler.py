"""place(): filter, weigh, choose, and say why (Nova's FilterScheduler, in small)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from tessera.scheduler.filters import DEFAULT_FILTERS, Filter
from tessera.scheduler.model import (
    Candidate,
    DatastoreSpace,
    FilterReason,
    PlacementRequest,
    Rejected,
    Strategy,
)
from tessera.scheduler.weights import DEFAULT_WEIGHERS, Weigher, scores


@dataclass(frozen=True)
class Decision:
    """The chosen candidate and datastore (None when nothing fits), and every candidate
    that fits, best first, with its score (`scores[i]` belongs to `ranked[i]`).

    `rejected` (each candidate turned down, with every filter's reason) is worked out when
    first read: choosing needs none of it, a dry run all of it.
    """

    request: PlacementRequest
    candidates: Sequence[Candidate]
    filters: tuple[Filter, ...]
    chosen: Candidate | None
    datastore: DatastoreSpace | None
    ranked: tuple[Candidate, ...]
    scores: tuple[float, ...]

    @cached_property
    def rejected(self) -> tuple[Rejected, ...]:
        fit = {id(c) for c in self.ranked}
        losers = [c for c in self.candidates if id(c) not in fit]
        reasons: dict[int, list[FilterReason]] = {id(c): [] for c in losers}
        for check in self.filters:
            # The fast path finds whom this filter turns down; `check` words only those.
            kept = {id(c) for c in check.keep(self.request, losers)}
            for candidate in [c for c in losers if id(c) not in kept]:
                why = check.check(self.request, candidate)
                if why is not None:
                    reasons[id(candidate)].append(FilterReason(check.name, why))
        return tuple(Rejected(c, tuple(reasons[id(c)])) for c in losers)

    @cached_property
    def rejected_by(self) -> dict[str, int]:
        """How many candidates each filter turned down (one may be turned down by several)."""
        counts = dict.fromkeys((check.name for check in self.filters), 0)
        for rejected in self.rejected:
            for reason in rejected.reasons:
                counts[reason.filter] += 1
        return counts

    @property
    def summary(self) -> str:
        total = len(self.candidates)
        if self.chosen is None:
            counts = ", ".join(f"{n} by {name}" for name, n in self.rejected_by.items() if n)
            return f"no candidate fits: {total} considered" + (
                f", rejected {counts}" if counts else ""
            )
        where = f" on datastore {self.datastore.name}" if self.datastore else ""
        return (
            f"{self.chosen.kind.value} {self.chosen.name} in pool {self.chosen.provider_name}"
            f"{where}; {len(self.ranked)} of {total} candidates fit"
        )


def place(
    request: PlacementRequest,
    candidates: Sequence[Candidate],
    *,
    filters: Sequence[Filter] = DEFAULT_FILTERS,
    weighers: Sequence[Weigher] = DEFAULT_WEIGHERS,
) -> Decision:
    """Choose where `request` goes among `candidates`. Deterministic: equal scores are
    ordered by name, then id, whatever order the candidates come in."""
    active = tuple(check for check in filters if check.applies(request))
    survivors: Sequence[Candidate] = candidates
    for check in active:
        survivors = check.keep(request, survivors)
    weights = scores(request, survivors, weighers)
    order = _ranking(survivors, weights)
    ranked = tuple(survivors[i] for i in order)
    chosen = ranked[0] if ranked else None
    return Decision(
        request=request,
        candidates=candidates,
        filters=active,
        chosen=chosen,
        datastore=choose_datastore(request, chosen) if chosen else None,
        ranked=ranked,
        scores=tuple(weights[i] for i in order),
    )


def _ranking(candidates: Sequence[Candidate], weights: list[float]) -> list[int]:
    """Indices by descending score; runs of equal scores (rare with real figures) are then
    ordered by name and id, which a key tuple per candidate would cost on every sort."""
    order = sorted(range(len(weights)), key=weights.__getitem__, reverse=True)
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and weights[order[end]] == weights[order[start]]:
            end += 1
        if end - start > 1:
            order[start:end] = sorted(
                order[start:end], key=lambda i: (candidates[i].name, candidates[i].id)
            )
        start = end
    return order


def choose_datastore(request: PlacementRequest, candidate: Candidate) -> DatastoreSpace | None:
    """The datastore for the disk: the roomiest when spreading, the tightest fit when
    packing (keeping large free extents for large disks). None when none has room."""
    need = request.disk_bytes
    ratio = request.overcommit.disk
    fitting = [d for d in candidate.datastores if d.available_bytes(ratio) >= need]
    if not fitting:
        return None
    if request.strategy is Strategy.SPREAD:
        return min(fitting, key=lambda d: (-d.available_bytes(ratio), d.name, d.id))
    return min(fitting, key=lambda d: (d.available_bytes(ratio), d.name, d.id))
