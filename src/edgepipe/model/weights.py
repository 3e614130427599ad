"""State dicts: read without running pickled code, loaded with named mismatches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepipe.errors import ModelError, UnsafePickleError, WeightsError, first_line
from edgepipe.model.loaded import TRUST_FLAG

if TYPE_CHECKING:
    import torch

def load_weights(module: torch.nn.Module, path: Path, *, trust_pickle: bool = False) -> None:
    """Load a state dict (.pt/.pth/.bin with weights_only, or .safetensors) into ``module``.

    A mismatch names the missing, unexpected and wrongly shaped keys.
    """
    import torch

    state = read_state_dict(path, trust_pickle=trust_pickle)
    expected = module.state_dict()
    if state and all(k.startswith("module.") for k in state) and not any(
        k.startswith("module.") for k in expected
    ):
        state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{k} (file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
        for k in set(state) & set(expected)
        if isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing from the file: {_list_keys(missing)}")
        if unexpected:
            parts.append(f"not in the model: {_list_keys(unexpected)}")
        if wrong_shape:
            parts.append(f"wrong shape: {_list_keys(wrong_shape)}")
        raise WeightsError(
            f"The weights in '{path}' do not match the model; " + "; ".join(parts) + ".",
            hint="check that MODEL is the architecture these weights were trained with "
            "(and its --model-arg values, e.g. num_classes).",
            details={"missing": missing, "unexpected": unexpected, "wrong_shape": wrong_shape},
        )
    module.load_state_dict(state, strict=True)


def read_state_dict(path: Path, *, trust_pickle: bool = False) -> dict[str, Any]:
    """Read a state dict without running pickled code (unless trusted)."""
    import torch

    path = Path(path)
    if path.stat().st_size == 0:
        raise WeightsError(f"The weights file '{path}' is empty (0 bytes).",
                           hint="save the state dict again.", reference="weights-invalid")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        from edgepipe.model.files import validate_artifact

        try:  # header and sizes first: a truncated or renamed file says what it is
            validate_artifact(path)
        except ModelError as exc:
            raise WeightsError(exc.message, hint=exc.hint, reference="weights-invalid") from exc
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:
            raise WeightsError(f"'{path}' is not a readable safetensors file: {first_line(exc)}",
                               hint="save it again with safetensors.torch.save_file.",
                               reference="weights-invalid") from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:
        message = str(exc)
        if "weights_only" in message or "Unsupported global" in message or "pickle" in message.lower():
            raise UnsafePickleError(
                f"'{path}' holds pickled Python objects, not only tensors; loading it would "
                "run code stored in the file.",
                hint=f"save model.state_dict() instead, or pass {TRUST_FLAG} if you trust it.",
            ) from exc
        raise WeightsError(f"Cannot read weights from '{path}': {first_line(exc)}",
                           hint="save them with torch.save(model.state_dict(), path) or "
                           "safetensors.", reference="weights-invalid") from exc
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    if isinstance(state, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = state.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if all(isinstance(v, torch.Tensor) for v in state.values()):
            return state
    raise WeightsError(
        f"'{path}' does not hold a state dict (a mapping of names to tensors).",
        hint="save it with torch.save(model.state_dict(), path).",
        reference="weights-invalid",
    )


def _list_keys(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")
