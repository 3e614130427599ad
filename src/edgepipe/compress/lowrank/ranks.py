"""Rank selection for low-rank factorization: by kept energy, by a target ratio of the
model's parameters or MACs, or per layer by sensitivity.

A layer whose factorized form at the chosen rank would not have fewer weights and MACs
than the original is kept whole (factorizing it would only add a layer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgepipe.compress.lowrank.config import LowRankConfig
from edgepipe.compress.lowrank.decompose import energy_rank
from edgepipe.compress.lowrank.layers import CALIB_BATCH, Candidate, factorized_module
from edgepipe.data import Dataset

SENSITIVITY_ENERGIES = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
BISECTION_STEPS = 40
RATIO_ENERGIES = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)


@dataclass
class Plan:
    """One candidate's ranks and what was decided about it (and why)."""

    candidate: Candidate
    ranks: tuple[int, ...] | None
    decision: str = "factorized"
    reason: str = ""
    energy: float | None = None
    latency: dict[str, Any] = field(default_factory=dict)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        params, macs = c.cost(None)
        document: dict[str, Any] = {
            "layer": c.name, "op": c.op, "kind": c.kind, "input_shape": list(c.input_shape),
            "full_ranks": list(c.full_ranks), "ranks": list(self.ranks) if self.ranks else None,
            "energy": self.energy, "decision": self.decision, "reason": self.reason,
            "params_before": params, "macs_before": macs}
        if self.ranks:
            document["params_after"], document["macs_after"] = c.cost(self.ranks)
        if self.latency:
            document["latency"] = self.latency
        if self.sensitivity:
            document["sensitivity"] = self.sensitivity
        return document


def ranks_at(candidate: Candidate, energy: float, multiple: int = 1) -> tuple[int, ...]:
    """The ranks that keep ``energy`` of each spectrum of ``candidate``, rounded up to a
    ``multiple`` (kernels that block channels by 8 or 16 run odd channel counts slowly)."""
    ranks = []
    for full, spectrum in zip(candidate.full_ranks, candidate.spectra, strict=True):
        rank = energy_rank(spectrum, energy)
        if multiple > 1 and rank > multiple // 2:
            rank = -(-rank // multiple) * multiple
        ranks.append(min(full, rank))
    return tuple(ranks)


def select_ranks(model: nn.Module, candidates: list[Candidate], totals: dict[str, int],
                 config: LowRankConfig, calib: Dataset, arrays: list[torch.Tensor]
                 ) -> tuple[list[Plan], dict[str, Any]]:
    """One Plan per candidate, and a summary of how the ranks were chosen."""
    if config.rank_selection == "energy":
        assert config.energy is not None
        plans = [_plan(c, ranks_at(c, config.energy, config.rank_multiple), config.energy)
                 for c in candidates]
        return plans, {"by": "energy", "energy": config.energy}
    if config.rank_selection == "ratio":
        assert config.ratio is not None
        return _by_ratio(candidates, totals, config.ratio, config.target,
                         config.rank_multiple)
    return _by_sensitivity(model, candidates, config, calib, arrays)


def _plan(candidate: Candidate, ranks: tuple[int, ...], energy: float) -> Plan:
    before = candidate.cost(None)
    after = candidate.cost(ranks)
    if after[0] >= before[0] and after[1] >= before[1]:
        return Plan(candidate, ranks, "kept whole", f"at ranks {list(ranks)} the factorized "
                    f"form has no fewer weights ({after[0]} vs {before[0]}) or MACs", energy)
    return Plan(candidate, ranks, "factorized", f"keeps {energy:.3g} of the energy", energy)


def kept_energy(candidate: Candidate, ranks: tuple[int, ...]) -> float:
    """The share of squared singular values ``ranks`` keep (mean over Tucker's two modes)."""
    shares = []
    for rank, spectrum in zip(ranks, candidate.spectra, strict=True):
        squared = spectrum.double() ** 2
        shares.append(float(squared[:rank].sum() / squared.sum().clamp_min(1e-30)))
    return sum(shares) / len(shares)


def _by_ratio(candidates: list[Candidate], totals: dict[str, int], ratio: float,
              target: str, multiple: int) -> tuple[list[Plan], dict[str, Any]]:
    """Per-layer ranks that meet the budget while losing the least energy overall.

    Each layer may stay whole or take the ranks of one energy level in RATIO_ENERGIES; its
    error is the share of energy lost. A Lagrange multiplier trades error for cost: for a
    given lambda each layer picks the option minimising error + lambda x cost / total,
    and lambda is bisected to the smallest value that meets ``ratio`` x total. Small or
    sensitive layers (little saved, much lost) so stay whole, unlike with one shared level.
    """
    index = 0 if target == "params" else 1
    total = totals[target]
    options = []
    for c in candidates:
        whole = c.cost(None)[index]
        choices = [(0.0, whole, None, None)]
        for energy in RATIO_ENERGIES:
            ranks = ranks_at(c, energy, multiple)
            cost = c.cost(ranks)
            if cost[0] < c.cost(None)[0] or cost[1] < c.cost(None)[1]:
                choices.append((1.0 - kept_energy(c, ranks), cost[index], ranks, energy))
        options.append(choices)

    def pick(lam: float) -> list[tuple[float, int, Any, Any]]:
        return [min(choices, key=lambda o: (o[0] + lam * o[1] / total, o[1]))
                for choices in options]

    def cost_of(picked: list[tuple[float, int, Any, Any]]) -> int:
        return total - sum(o[0][1] - p[1] for o, p in zip(options, picked, strict=True))

    budget = ratio * total
    low, high = 0.0, 1.0
    while cost_of(pick(high)) > budget and high < 1e9:
        high *= 4
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        if cost_of(pick(middle)) <= budget:
            high = middle
        else:
            low = middle
    plans = []
    for c, (error, _, ranks, energy) in zip(candidates, pick(high), strict=True):
        if ranks is None:
            plans.append(Plan(c, None, "kept whole", "the budget is met with the least energy "
                              "lost while this layer stays whole"))
        else:
            plans.append(Plan(c, ranks, "factorized", f"keeps {1 - error:.3g} of the energy "
                              f"(level {energy:g})", energy))
    return plans, {"by": "ratio", "ratio": ratio, "target": target,
                   "allocation": "per layer, least energy lost for the budget (Lagrangian)",
                   "lambda": round(high, 6)}


def _by_sensitivity(model: nn.Module, candidates: list[Candidate], config: LowRankConfig,
                    calib: Dataset, arrays: list[torch.Tensor]
                    ) -> tuple[list[Plan], dict[str, Any]]:
    """Per layer, the smallest rank whose drop alone stays within ``layer_drop`` points."""
    labels = calib.labels
    reference = _predict(model, arrays)
    metric = "top1" if labels is not None else "agreement"
    base = _score(reference, labels, reference)
    plans = []
    for candidate in candidates:
        table, chosen = [], None
        for energy in SENSITIVITY_ENERGIES:
            ranks = ranks_at(candidate, energy, config.rank_multiple)
            trial = copy.deepcopy(model)
            trial.set_submodule(candidate.name, factorized_module(candidate, ranks))
            drop = 100 * (base - _score(_predict(trial, arrays), labels, reference))
            table.append({"energy": energy, "ranks": list(ranks), "drop_points": round(drop, 4)})
            plan = _plan(candidate, ranks, energy)
            if drop <= config.layer_drop and plan.decision == "factorized":
                chosen = plan
                break
        if chosen is None:
            chosen = Plan(candidate, None, "kept whole", f"no rank tried kept its {metric} "
                          f"drop within {config.layer_drop:g} points (or saved nothing)")
        chosen.sensitivity = table
        plans.append(chosen)
    return plans, {"by": "sensitivity", "metric": metric, "layer_drop": config.layer_drop,
                   "measured_on": f"calibration split ({len(calib)} samples)",
                   "energies_tried": list(SENSITIVITY_ENERGIES)}


def _predict(model: nn.Module, arrays: list[torch.Tensor]) -> np.ndarray:
    outputs = []
    with torch.no_grad():
        for start in range(0, len(arrays[0]), CALIB_BATCH):
            out = model.eval()(*[a[start:start + CALIB_BATCH] for a in arrays])
            outputs.append((out[0] if isinstance(out, (tuple, list)) else out).numpy())
    return np.concatenate(outputs)


def _score(outputs: np.ndarray, labels: np.ndarray | None, reference: np.ndarray) -> float:
    predicted = outputs.reshape(len(outputs), -1).argmax(1)
    truth = labels if labels is not None else reference.reshape(len(reference), -1).argmax(1)
    return float(np.mean(predicted == truth))
