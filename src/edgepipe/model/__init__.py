"""MODEL specs -> a loaded model (a torch ``nn.Module`` or an ONNX file) and its inputs.

Specs:

- ``path/model.onnx``                 an ONNX file (external data beside it is fine)
- ``path/model.pt2``                  a ``torch.export`` ExportedProgram
- ``torchvision:NAME``                a torchvision architecture, random weights unless ``weights``
- ``package.module:factory``          a callable returning an ``nn.Module`` (cwd and PYTHONPATH)
- ``path/file.py:factory``            the same from one file (relative to the cwd), imported
                                      under a private module name
- ``builtin:digits-cnn``              edgepipe's bundled digits CNN with its trained weights
- ``builtin:fashion-mnist-cnn``       its bundled Fashion-MNIST residual CNN (1x1x28x28)
- ``path/model.pt`` / ``.pth``        a pickled whole module: refused unless ``trust_pickle``
- ``hf:FOLDER``                       a Hugging Face folder (``save_pretrained``: config.json
                                      and safetensors), loaded offline; see
                                      :mod:`edgepipe.model.hf` for the architectures

While a factory's module, a trusted pickle or trusted weights load, the current directory is
importable (and a file's own folder), and only then.

State dicts are read with ``weights_only=True`` or from ``.safetensors``; pickled code is
never run unless the user passes the trust flag.
"""

from edgepipe.model.load import as_loaded, example_specs, load_model
from edgepipe.model.loaded import (
    ARTIFACT_NAME_MAX,
    SPEC_HINT,
    TRUST_FLAG,
    LoadedModel,
    ModelSource,
    check_artifact_name,
    check_forward,
    classifier_classes,
    file_sha256,
    flatten_outputs,
    merge_inputs,
    run_torch,
)
from edgepipe.model.onnx_specs import onnx_input_specs, onnx_output_specs
from edgepipe.model.weights import load_weights, read_state_dict

__all__ = [
    "ARTIFACT_NAME_MAX",
    "SPEC_HINT",
    "TRUST_FLAG",
    "LoadedModel",
    "ModelSource",
    "as_loaded",
    "check_artifact_name",
    "check_forward",
    "classifier_classes",
    "example_specs",
    "file_sha256",
    "flatten_outputs",
    "load_model",
    "load_weights",
    "merge_inputs",
    "onnx_input_specs",
    "onnx_output_specs",
    "read_state_dict",
    "run_torch",
]
