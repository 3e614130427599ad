"""Models whose output is not one tensor: tuples, named tuples, lists and dicts of tensors.

Training losses and comparisons work on the flat list of output tensors. The classifier
output (where top-1 against labels applies) is the one shaped (N, classes) with room for
every label; a model without one is measured against its float model on every output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from edgepipe.training import kd_loss


def flat_outputs(result: Any) -> list[Any]:
    """A model's outputs as a flat list: a tensor (or array), a tuple / list / named tuple,
    a dict (in its order)."""
    if isinstance(result, (torch.Tensor, np.ndarray)):
        return [result]
    if isinstance(result, dict):
        return [t for value in result.values() for t in flat_outputs(value)]
    if isinstance(result, (tuple, list)):
        return [t for value in result for t in flat_outputs(value)]
    return []


def classifier_index(outputs: list[Any], labels: Any) -> int | None:
    """The first output shaped (N, classes), classes > 1, that every label fits; or None."""
    if labels is None or not len(labels):
        return None
    top = int(labels.max())
    for index, output in enumerate(outputs):
        if output.ndim == 2 and output.shape[1] > max(1, top):
            return index
    return None


def multi_loss(student: Any, teacher: Any, labels: torch.Tensor | None, temperature: float,
               weight: float) -> torch.Tensor:
    """Distillation on every output the teacher gives.

    One output: the knowledge-distillation loss (plus cross-entropy when the labels fit it).
    Several: that loss on the classifier output (if any), and on every other output the mean
    squared error to the teacher's, divided by the teacher output's variance (so outputs of
    different scales weigh alike; a thousandth of its mean square keeps a constant output
    from dividing by zero). A student in training mode may return more outputs than
    the teacher at inference (an auxiliary branch): only the first ones count.
    """
    mine, target = flat_outputs(student), flat_outputs(teacher)
    if len(mine) < len(target):
        raise ValueError(f"the trained model gives {len(mine)} output(s), the float model "
                         f"{len(target)}")
    mine = mine[:len(target)]
    if len(target) == 1:
        fits = labels is not None and mine[0].dim() >= 2 and classifier_index(mine, labels) == 0
        return kd_loss(mine[0], target[0], labels if fits else None, temperature, weight)
    classifier = classifier_index(target, labels)
    total = torch.zeros(())
    for index, (a, b) in enumerate(zip(mine, target, strict=True)):
        if index == classifier:
            total = total + kd_loss(a, b, labels, temperature, weight)
        else:
            target = b.detach().float()
            # the variance, kept off zero for a (nearly) constant output
            scale = target.var(unbiased=False) + 1e-3 * target.pow(2).mean() + 1e-12
            total = total + F.mse_loss(a, b) / scale
    return total
