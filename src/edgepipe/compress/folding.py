"""Batch-norm folding for the methods that rewrite a torch model's layers.

A deployed model runs with each BatchNorm folded into the convolution before it (every
export path here does it); quantizers and factorizers that work on the weights must see
the folded weights, or they misjudge which channels matter.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def fold_batchnorm(model: Any) -> None:
    """Fold each BatchNorm that directly follows a convolution in a Sequential into it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        keys = list(parent._modules)
        for first, second in zip(keys, keys[1:], strict=False):
            conv, norm = parent._modules[first], parent._modules[second]
            if (isinstance(conv, (nn.Conv1d, nn.Conv2d))
                    and isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d))):
                parent._modules[first] = fuse_conv_bn_eval(conv, norm)
                parent._modules[second] = nn.Identity()


def folded(model: nn.Module) -> tuple[nn.Module, str]:
    """A copy of ``model`` (eval mode) with every Conv -> BatchNorm pair folded, and how.

    torch.fx's ``fuse`` folds pairs anywhere in a traceable model (torchvision's blocks
    keep ``bn1`` beside ``conv1``, not in a Sequential); a model fx cannot trace is folded
    where the pairs sit in a Sequential. Layer names are kept.
    """
    import copy

    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(copy.deepcopy(model).eval()), "torch.fx"
    except Exception:  # fx cannot trace it (data-dependent control flow, say)
        fallback = copy.deepcopy(model).eval()
        fold_batchnorm(fallback)
        return fallback, "Sequential pairs only (torch.fx could not trace the model)"
