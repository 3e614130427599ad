"""Every error reference edgepipe prints (``error: REFERENCE``), declared once.

Each :class:`Reference` gives the exit status it comes with, a one-line meaning and the usual
hint. ``docs/errors.md`` is generated from this table (``python scripts/error_list.py``), with
the places each reference is raised and their messages. A test checks that every
``reference=`` raised in the source is declared here, that every entry here is raised
somewhere, and that the error class at each raise site exits with the declared status.

To add an error: raise it with a new ``reference=``, then run
``python scripts/error_list.py --add-missing`` (it appends an entry drafted from the raise
site's message and hint: edit the meaning into one plain sentence) and
``python scripts/error_list.py`` (the page). Any error may instead exit with status 3 when a
command did part of its job (the formats or variants that were made are kept).

This module imports only edgepipe.errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepipe.errors import EXIT_BACKEND_MISSING, EXIT_FAILURE, EXIT_INTERNAL, EXIT_UNREACHABLE

__all__ = ["REFERENCES", "Reference", "lookup"]


@dataclass(frozen=True)
class Reference:
    """One error reference: its name, exit status, meaning and usual hint."""

    name: str
    meaning: str
    hint: str = ""
    exit_code: int = EXIT_FAILURE


def lookup(name: str) -> Reference | None:
    """The declared reference called ``name``, or None."""
    return REFERENCES.get(name)


_4, _5, _70 = EXIT_BACKEND_MISSING, EXIT_UNREACHABLE, EXIT_INTERNAL

REFERENCES: dict[str, Reference] = {
    entry.name: entry
    for entry in (
        Reference("adb-failed", "adb {...} failed on {...}: {...}."),
        Reference(
            "agent-failed",
            "The profiling agent failed on {...} (exit {...}): {...}.",
            "check that the artifact loads with `edgepipe eval` and that the runtime is installed; rerun with --debug.",
        ),
        Reference(
            "ambiguous-artifact",
            "The result holds {...} artifacts ({...}); which one is meant is not clear.",
            "give one by path: result.out / result.artifacts[i]['path'].",
        ),
        Reference("artifact-not-found", "No file at '{...}'.", "check the path."),
        Reference(
            "artifact-type",
            "edgepipe cannot use a {...} as an artifact.",
            "give the artifact's path, or the result of edgepipe.export or edgepipe.compress.",
        ),
        Reference(
            "artifact-unloadable",
            "{...} cannot load '{...}': {...}.",
            "check that the file is complete (re-export it) and matches its suffix.",
        ),
        Reference(
            "backend-missing",
            "An optional backend (a runtime or converter) that is not installed.",
            "pip install 'edgepipe[{...}]' (or 'edgepipe[all]' for every backend).",
            exit_code=_4,
        ),
        Reference(
            "bad-bandwidth",
            "Cannot read the bandwidth {...}.",
            "write a positive rate, e.g. 10Mbps, 500kbps or 1Gbps.",
        ),
        Reference(
            "bad-batch", "--batch-size {...} must be at least 1.", "give a positive batch size."
        ),
        Reference(
            "bad-batch-size",
            "The batch size must be at least 1, not {...}.",
            "pass a positive batch size.",
        ),
        Reference(
            "bad-bit-width",
            "{...}={...} cannot be exported to ONNX QCDQ: {...}.",
            "give {...} between {...} and {...} ({...}...).",
        ),
        Reference(
            "bad-bits",
            "--bits {...}: the codes are 1 to 8 bits.",
            "8 is the usual choice; 4 halves the bytes again.",
        ),
        Reference(
            "bad-bottleneck",
            "--bottleneck must be at least 1 and --stride 1 or 2.",
            "e.g. --bottleneck 4 --stride 1.",
        ),
        Reference(
            "bad-calib-size",
            "--calib-size {...} must be a positive sample count.",
            "give a count such as 256 (100-1000 samples is typical).",
        ),
        Reference("bad-calibration", "Unknown calibration method {...}.", "use one of: {...}."),
        Reference(
            "bad-channels",
            "Images can have 1 or 3 channels, not {...}.",
            "use channels 1 (grayscale) or 3 (RGB).",
        ),
        Reference(
            "bad-config",
            "fp16 inputs and outputs (keep_io_types=False) apply to ONNX only; the formats also include {...}.",
            "keep float32 IO (the default), or ask for --format onnx alone.",
        ),
        Reference(
            "bad-cpus",
            "--cpus names CPU {...} and more, which this machine does not give this process: it may use {...} ({...} CPU{...}).",
            "pick CPUs among {...}, e.g. --cpus {...}.",
        ),
        Reference("bad-dtype", "Unknown dtype {...}.", "use one of: {...}."),
        Reference(
            "bad-example-inputs", "example_inputs is empty.", "give one tensor per model input."
        ),
        Reference(
            "bad-host",
            "Cannot listen on {...}: {...}.",
            "give an address of this machine (127.0.0.1 for this machine only, 0.0.0.0 for every interface).",
        ),
        Reference(
            "bad-image-size",
            "Cannot use image size {...}.",
            "give one positive int (32) or a pair (height, width).",
        ),
        Reference(
            "bad-input",
            "The user gave something edgepipe cannot use (a path, a spec, an option value).",
        ),
        Reference(
            "bad-input-limit",
            "{...}={...} is not a size in MiB.",
            "set it to a positive number of MiB, e.g. {...}=2048.",
        ),
        Reference(
            "bad-input-option",
            "Cannot read --input {...}.",
            "write NAME:SHAPE:DTYPE, e.g. --input input_ids:1x128:int64 (-1 or a name for a dynamic dimension).",
        ),
        Reference("bad-layout", "Unknown layout {...}.", "use {...}."),
        Reference(
            "bad-limits",
            "--max-request-bytes must be at least 1024 and --timeout above 0.",
            "the defaults are 16 MiB and 30 s.",
        ),
        Reference(
            "bad-max-drop",
            "--max-drop {...} must be a number of points >= 0.",
            "give e.g. --max-drop 0.5 (top-1 points with labels, cosine points without).",
        ),
        Reference(
            "bad-model-arg",
            "Cannot read --model-arg {...}.",
            "write KEY=VALUE, e.g. --model-arg num_classes=10.",
        ),
        Reference(
            "bad-model-name",
            "The model name {...} cannot name a Triton model and a Kubernetes object.",
            "use letters, digits and '-', starting with a letter.",
        ),
        Reference("bad-normalize", "Unknown normalization {...}.", "use one of: {...}."),
        Reference(
            "bad-opset",
            "--opset {...} is outside the range ONNX knows (7-25).",
            "leave --opset out for the exporter's default, or give 17-23.",
        ),
        Reference(
            "bad-percentile",
            "percentile {...} is outside [90, 100].",
            "give the percentile of |activation| to keep, such as 99.999.",
        ),
        Reference(
            "bad-port", "--port {...} is not a TCP port.", "give 1-65535, or 0 for any free port."
        ),
        Reference(
            "bad-precision",
            "--precision {...}: fp32 or fp16.",
            "fp16 casts a torch program as it loads.",
        ),
        Reference(
            "bad-recipe",
            "The recipe '{...}' does not hold a mapping.",
            "a recipe has keys model, data, variants, targets (see examples/quickstart.yaml).",
        ),
        Reference(
            "bad-rtt",
            "Cannot read the round trip {...}.",
            "write a duration of zero or more, e.g. 20ms.",
        ),
        Reference(
            "bad-runs",
            "--runs {...}: at least one timed run is needed.",
            "give --runs 1 or more (and --duration for a time floor).",
        ),
        Reference(
            "bad-samples",
            "--samples {...} must be at least 1.",
            "give how many data samples parity should run on, e.g. 64.",
        ),
        Reference(
            "bad-server-url",
            "Cannot read the server address {...}.",
            "write http://HOST:PORT (REST) or grpc://HOST:PORT.",
        ),
        Reference(
            "bad-split",
            "eval_fraction must be in [0, 1), not {...}.",
            "pass a fraction such as 0.2.",
        ),
        Reference(
            "bad-split-part",
            "Unknown part {...} of the data.",
            "give eval (the seeded held-out split) or all (every sample).",
        ),
        Reference(
            "bad-target-file",
            "Target file '{...}' does not hold a mapping.",
            "a target file is a YAML mapping (name, title, kind, ...).",
        ),
        Reference(
            "bad-threads",
            "--threads {...} must be at least 1.",
            "leave it out to use every usable core.",
        ),
        Reference(
            "bad-tolerance",
            "The tolerance --atol {...} is negative.",
            "give a tolerance >= 0, as a fraction of the output scale (e.g. 1e-4); leave it out for the default of each precision ({...}).",
        ),
        Reference(
            "bad-training-option",
            "{...} {...} is out of range: it takes {...}.",
            "give {...} (recipe option {...}) {...}.",
        ),
        Reference(
            "benchmark-model-failed",
            "benchmark_model on {...} gave no timings: {...}.",
            "run it by hand with `adb shell` to see why.",
        ),
        Reference(
            "bottleneck-too-large",
            "A bottleneck of {...} channels does not compress the {...} channels at {...}.",
            "give --bottleneck below {...} (e.g. {...}).",
        ),
        Reference(
            "budget-not-met",
            "The accuracy budget was not met: {...}.",
            "the best artifact found is kept under the name above (recorded in manifest.json with every step); raise --max-drop, try another --calibration, or keep more of the model in float with --exclude.",
        ),
        Reference(
            "builtin-weights-missing",
            "No training record for {...} at '{...}'.",
            "run 'python -m edgepipe.zoo.train' to train the built-in models.",
        ),
        Reference(
            "calibration-data-missing",
            "--method {...} needs calibration data, and none was given.",
            "give --data (a .npz, an image folder or builtin:digits) with samples like the model's real inputs.",
        ),
        Reference(
            "cannot-estimate",
            "Target {...} has no peak throughput or memory bandwidth figure, so its latency cannot be estimated.",
            "add peak_gmacs and memory.bandwidth_gbps to {...}.yaml.",
        ),
        Reference(
            "cannot-write-report",
            "Cannot write the report in {...}: {...}.",
            "free some space (or give another -o) and run again: the steps that finished are kept and will not run twice.",
        ),
        Reference(
            "compressed-artifact-failed",
            "The compressed artifact does not run in its runtime: {...}: {...}.",
            "this is a bug in the backend or a layer its runtime cannot run; try another method or format, or exclude the layer. --debug shows the traceback.",
        ),
        Reference(
            "conflicting-options",
            "Options ({...}) were given with a ready-made {...}.",
            "put them in the config, or leave the config out.",
        ),
        Reference(
            "connection-lost",
            "The connection to {...} was lost ({...}); measured before it dropped: {...}.",
            "check the device (power, network, thermal shutdown) and run again; the partial figures are in the error's details.",
            exit_code=_5,
        ),
        Reference(
            "cut-not-a-feature-map",
            "The tensor at {...} has shape {...}; the bottleneck needs a feature map (N, C, H, W).",
            "cut earlier, before pooling and flattening.",
        ),
        Reference(
            "data-bad-rank",
            "Array {...} in '{...}' has shape {...}; inputs need a sample axis and at least one more (N x features, or N x C x H x W).",
            "a single sample is x[None]; a list of scalars is x[:, None].",
        ),
        Reference(
            "data-dtype-mismatch",
            "The data for input {...} is {...}; the model takes {...}.",
            "save the array as {...} (floats scaled as the model expects).",
        ),
        Reference(
            "data-empty", "The data from '{...}' has no arrays.", "give at least one input array."
        ),
        Reference(
            "data-error",
            "A DATA spec that cannot be loaded, or data that is unusable (NaN, bad labels).",
        ),
        Reference(
            "data-format",
            "edgepipe cannot read data from '{...}' ({...}).",
            "save the arrays with numpy.savez(path, x=..., y=...) as a .npz file, or give a folder of class sub-folders of images.",
        ),
        Reference(
            "data-inputs-mismatch",
            "The model takes {...} input(s) ({...}); the data from '{...}' has {...} ({...}).",
            "save one array per model input name in the .npz (plus y for labels).",
        ),
        Reference(
            "data-length-mismatch",
            "The arrays of '{...}' hold different numbers of samples: {...}.",
            "every array (and y) needs the same length along its first axis.",
        ),
        Reference(
            "data-not-finite",
            "Array {...} in '{...}' has {...} NaN or Inf values in {...} samples; the first is sample {...}.",
            "drop or repair those samples before using the data.",
        ),
        Reference(
            "data-not-found",
            "No file or folder at '{...}'.",
            "give a .npz file, a folder of class sub-folders of images, or {...}.",
        ),
        Reference(
            "data-not-numeric",
            "Array {...} in '{...}' is {...}, not numeric.",
            "save inputs as numbers (float32 for float models, int64 for token ids).",
        ),
        Reference(
            "data-several-inputs",
            "The data has {...} inputs ({...}).",
            "pick one with dataset.inputs[NAME].",
        ),
        Reference(
            "data-shape-mismatch",
            "The data from '{...}' has samples of shape {...} (arrays {...}); the model input {...} takes {...}, i.e.",
            "give data shaped for this artifact (builtin:digits shapes itself to the input; an .npz must hold arrays of (N, *sample shape)).",
        ),
        Reference(
            "data-too-small",
            "--data {...} has {...} samples; the batch is {...}.",
            "lower --batch or give more data.",
        ),
        Reference(
            "data-type",
            "split_data without a model takes a DATA spec or a Dataset.",
            "pass model= to shape arrays for it, or wrap them in edgepipe.Dataset({'x': x}, labels=y).",
        ),
        Reference(
            "data-unreadable",
            "'{...}' is not a readable .npz file: {...}.",
            "save it with numpy.savez(path, x=..., y=...).",
        ),
        Reference(
            "device-disk-full",
            "{...} has {...} bytes free in /tmp; the artifact and inputs take {...}.",
            "free space on the device or profile a smaller (quantized) artifact.",
        ),
        Reference(
            "device-memory-too-small",
            "{...} has {...} bytes of memory available; the artifact alone is {...} bytes.",
            "profile a smaller (quantized) artifact on this device.",
        ),
        Reference(
            "does-not-fit",
            "{...} does not fit {...}: {...}.",
            "quantize to int8, lower the input resolution, or pick a bigger target (`edgepipe targets list`).",
        ),
        Reference(
            "eval-needs-labels-or-reference",
            "Nothing to measure: {...}, and no reference was given.",
            "give labelled data (y in the .npz, or class sub-folders) for top-1, or a reference (--reference MODEL or another artifact) for SQNR and cosine similarity.",
        ),
        Reference(
            "example-inputs-needed",
            "The nn.Module {...} was given without example_inputs, so its input shapes are unknown.",
            "pass example_inputs=torch.randn(1, 3, 32, 32) (a tuple for several inputs), shaped as one batch the model takes.",
        ),
        Reference(
            "export-failed",
            "the float model's {...} export failed: {...}.",
            "the other formats were made and checked ({...}); --debug shows each failure's traceback.",
        ),
        Reference(
            "factory-failed",
            "The factory '{...}' returned a {...}, not an nn.Module.",
            "make the factory return the model (an nn.Module instance).",
        ),
        Reference(
            "factory-import",
            "Cannot import {...} for the factory spec '{...}': {...}.",
            "run edgepipe from the folder that holds the module, or add that folder to PYTHONPATH. {...}",
        ),
        Reference("factory-missing", "{...} has no callable named {...}.", "did you mean {...}?"),
        Reference(
            "fixed-batch",
            "Input {...} has a fixed batch of {...}; --batch {...} was asked for.",
            "use --batch {...}, or export with a dynamic batch (`edgepipe export ... --dynamic-batch`).",
        ),
        Reference(
            "forward-failed",
            "'{...}' raised {...} on inputs of shape {...}: {...}.",
            "check the input shapes against what the model takes; --debug shows the model's traceback.",
        ),
        Reference(
            "fp16-failed",
            "litert-torch's fp16 recipe failed on this model: {...}: {...}.",
            "TFLite fp16 is not available for this model; use --format onnx or openvino for fp16. --debug shows the traceback.",
        ),
        Reference(
            "host-key",
            "{...}: the host key is unknown or has changed ({...}).",
            "connect once with `ssh {...}` and check the fingerprint, or add it to known_hosts; edgepipe does not skip host key checking.",
        ),
        Reference(
            "image-sizes-differ",
            "The images in '{...}' have {...} different sizes ({...}, {...}, ...).",
            "give an image size to resize them to.",
        ),
        Reference(
            "image-unreadable",
            "Cannot read the image '{...}': {...}.",
            "replace or remove the file.",
        ),
        Reference(
            "input-shape-needed",
            "edgepipe cannot tell the input shape of '{...}' from the model.",
            "give it with --input-shape 1x3x224x224, or --input NAME:SHAPE:DTYPE for each input of a model with several.",
        ),
        Reference(
            "input-too-large",
            "The {...} of shape {...} ({...}) would take {...} MiB for one sample, over the limit of {...} MiB.",
            "check the shape; if it is right, raise the limit with {...}={...}.",
        ),
        Reference(
            "inspect-failed",
            "edgepipe could not build the graph of '{...}': {...}.",
            "run with --debug for the traceback; for a torch model, check that it runs on inputs of the given shapes and dtypes.",
        ),
        Reference(
            "internal-error",
            "Unexpected {...}: {...}.",
            "this is a bug in edgepipe or a backend; rerun with --debug for the traceback and report it.",
            exit_code=_70,
        ),
        Reference(
            "labels-bad-shape",
            "The labels y in '{...}' have shape {...}; they must be 1-D.",
            "save one class index per sample (for one-hot labels, y.argmax(1)).",
        ),
        Reference(
            "labels-length-mismatch",
            "'{...}' has {...} samples but {...} labels in y.",
            "y needs one label per sample of x.",
        ),
        Reference(
            "labels-negative",
            "The labels y in '{...}' have {...} negative values (first at sample {...}: {...} is the smallest).",
            "labels are class indices 0..K-1; remap or drop the negative ones.",
        ),
        Reference(
            "labels-not-integer",
            "The labels y in '{...}' are not integers ({...}{...}).",
            "save class indices as int64 (map class names to 0..K-1 first).",
        ),
        Reference(
            "labels-out-of-range",
            "{...} labels of '{...}' are outside 0..{...} (the largest is {...}, first at sample {...}); the model has {...} classes.",
            "check that the labels are class indices for this model (0-based).",
        ),
        Reference(
            "manifest-invalid",
            "'{...}' is not an edgepipe manifest (it needs a mapping with lists 'artifacts' and 'steps', each artifact with a name).",
            "it was edited by hand or written by another tool; fix or remove it, or use a new output folder.",
        ),
        Reference(
            "manifest-too-new",
            "'{...}' was written by a newer edgepipe (schema {...}).",
            "upgrade edgepipe, or use a new output folder.",
        ),
        Reference(
            "method-needs-torch",
            "--method binary trains a torch model; {...} is {...}.",
            "give the torch model (package.module:factory, torchvision:NAME, builtin:...) rather than its ONNX export.",
        ),
        Reference(
            "method-not-available",
            "--method {...} is not available for {...}.",
            "--method {...} works for: {...}.",
        ),
        Reference(
            "mixed-batch",
            "The inputs of '{...}' have different fixed batch sizes ({...}).",
            "export the model with one batch size for every input.",
        ),
        Reference(
            "model-construction",
            "torchvision could not build {...} with {...}: {...}.",
            "check the --model-arg values against the architecture's signature.",
        ),
        Reference(
            "model-error", "A MODEL spec that cannot be loaded, or a model that fails when run."
        ),
        Reference(
            "model-not-found",
            "'{...}' is not a file and not a model spec edgepipe knows.",
            "check the path; {...}",
        ),
        Reference(
            "model-spec",
            "The MODEL spec is empty.",
            "edgepipe takes .onnx, .pt2 or a torch architecture as MODEL; use 'edgepipe eval' or 'edgepipe profile' on artifacts.",
        ),
        Reference("model-type", "edgepipe cannot use a {...} as a model."),
        Reference(
            "multi-tensor-cut",
            "At {...} more than one tensor crosses the cut ({...}).",
            "the nearest single-tensor cut is {...}; `edgepipe split points MODEL` lists them.",
        ),
        Reference(
            "no-adb",
            "The adb client is not installed here.",
            "install Android's platform-tools (apt install adb) and check `adb devices`.",
        ),
        Reference(
            "no-benchmark-model",
            "No benchmark_model binary at '{...}'.",
            "download TFLite's prebuilt android_aarch64_benchmark_model or build it with bazel.",
        ),
        Reference(
            "no-class-folders",
            "'{...}' has no class sub-folders (it holds {...} images directly).",
            "put the images of each class into a sub-folder named after the class.",
        ),
        Reference(
            "no-downloads",
            "Pretrained weights are not downloaded by edgepipe.",
            "pass a local state dict with --weights FILE instead of a weights model-arg.",
        ),
        Reference(
            "no-graph-for-estimate",
            "Cannot estimate {...} on {...}: {...}.",
            "profile the ONNX artifact of the same model, or export with edgepipe so manifest.json names the source.",
        ),
        Reference(
            "no-images",
            "'{...}' has no images in {...} of its {...} class folders ({...}{...}).",
            "add images ({...}) or remove the empty folders.",
        ),
        Reference(
            "no-ssh", "The OpenSSH client (`ssh`) is not installed here.", "install openssh-client."
        ),
        Reference(
            "no-tail-artifact",
            "{...} has no {...} for {...}.",
            "it has {...}; export the tail with {...}, or pick --runtime to match.",
        ),
        Reference(
            "no-token-on-network",
            "--host {...} serves beyond this machine, and no token is set (${...} is empty): anyone who can reach it could use it.",
            "set ${...} to a secret of 16+ characters (e.g. `export {...}=$(openssl rand -hex 24)`), bind to 127.0.0.1, or pass --allow-no-token if the network itself is trusted.",
        ),
        Reference(
            "not-a-split-run",
            "{...} is not the output of `edgepipe split`.",
            "give the OUT directory of `edgepipe split`.",
        ),
        Reference(
            "not-an-mcu",
            "{...} is not a microcontroller; `targets check` asks whether a model fits one.",
            "use `edgepipe profile ARTIFACT --target {...}` for latency and memory on it; MCUs in the catalog: {...}.",
        ),
        Reference(
            "not-tflite",
            "benchmark_model runs .tflite files; {...} is not one.",
            "profile the .tflite export, or use the agent (--remote-python) for other formats.",
        ),
        Reference(
            "nothing-to-binarize",
            "The model has no layer to binarize: {...} Conv1d / Conv2d / Linear layer(s) ({...}), and the first and last stay at {...} bits{...}.",
            "binarization needs a convolution or Linear layer between the first and last (give --first-last-bits none to binarize those too), or use --method w4a8 / int8.",
        ),
        Reference(
            "nothing-to-factorize",
            "The model has no layer low-rank factorization can touch: it needs Linear or Conv2d layers with one group.",
            "try --method int8 or fp16 for this model.",
        ),
        Reference(
            "nothing-to-quantize",
            "The model has no Conv1d, Conv2d or Linear layer to quantize.",
            "use --method int8 or fp16 for this model.",
        ),
        Reference(
            "npz-missing-array",
            "'{...}' has no array for the model input(s) {...} (it has {...}).",
            "save one array per model input name, e.g. numpy.savez(path, {...}, y=...).",
        ),
        Reference(
            "npz-missing-x",
            "'{...}' has no array named 'x' (it has {...}).",
            "save the inputs as x (and labels as y): numpy.savez(path, x=..., y=...).",
        ),
        Reference(
            "onnx-check-failed",
            "The exported ONNX model fails onnx.checker: {...}.",
            "this is a bug in the exporter; --debug shows details.",
        ),
        Reference(
            "onnx-export-failed",
            "Neither ONNX exporter could export the model.",
            "rewrite the failing part of forward() with ops ONNX supports, or try another --opset; --debug shows the full traceback.",
        ),
        Reference(
            "onnx-invalid",
            "'{...}' is empty (0 bytes).",
            "the file was not written completely; export it again.",
        ),
        Reference(
            "openvino-export-failed",
            "OpenVINO could not convert the model.",
            "export ONNX first and convert that (edgepipe export MODEL.onnx --format openvino), or rewrite the failing part of forward(). --debug shows the traceback.",
        ),
        Reference(
            "opset-conversion-failed",
            "onnx cannot convert the model from opset {...} to {...}: {...}.",
            "leave --opset out to keep opset {...}.",
        ),
        Reference(
            "option-not-for-method",
            "{...} do{...} not apply to --method {...}.",
            "--method {...} takes: {...}.",
        ),
        Reference(
            "out-not-a-folder",
            "The output path '{...}' is a file, not a folder.",
            "give -o a folder (new or existing) for the run's artifacts.",
        ),
        Reference(
            "out-not-writable",
            "Cannot create the output folder '{...}': {...}.",
            "choose a folder you can write to.",
        ),
        Reference("output-exists", "{...} exists and is not empty.", "give a new folder with -o."),
        Reference(
            "packed-mismatch",
            "{...} is not an edgepipe packed weights file.",
            "write it with edgepipe compress --method binary.",
        ),
        Reference(
            "parity-inputs",
            "The model takes {...} input(s) ({...}); {...} array(s) were given.",
            "give one array per model input, in order.",
        ),
        Reference(
            "partly-failed",
            "{...} of {...} format(s) failed: {...}.",
            "the other formats' artifacts are in OUT and its manifest.json; run the failed format alone (or with --debug) for its details.",
        ),
        Reference(
            "patch-plan-unsupported",
            "--patch-plan needs a torch model with one image input.",
            "give a torchvision CNN or a factory returning one.",
        ),
        Reference(
            "pickle-failed",
            "Could not unpickle '{...}': {...}.",
            "the classes the pickle refers to must be importable from the current directory or PYTHONPATH.",
        ),
        Reference(
            "pickle-refused",
            "A pickled whole module, refused unless the user trusts it explicitly.",
        ),
        Reference(
            "port-unavailable",
            "Cannot listen on {...}:{...}: {...}.",
            "pick another --port (0 takes any free one), or stop what holds it.",
        ),
        Reference(
            "profile-timeout",
            "Profiling {...} took longer than {...} s.",
            "lower --runs or --duration, or check that the model runs at all with `edgepipe eval`.",
        ),
        Reference(
            "pt2-invalid",
            "'{...}' is not a readable torch.export program: {...}.",
            "save it with torch.export.save(torch.export.export(model, args), path).",
        ),
        Reference(
            "quantization-failed",
            "Brevitas could not export the quantized model to ONNX QCDQ: {...}: {...}.",
            "--debug shows the traceback; a layer Brevitas' exporter cannot handle would need to stay float.",
        ),
        Reference("recipe-not-found", "Cannot read the recipe '{...}': {...}.", "check the path."),
        Reference(
            "recipe-too-large",
            "The recipe '{...}' would expand to more than {...} values (anchors and aliases, near line {...}).",
            "a recipe needs a few dozen values; remove the repeated aliases.",
        ),
        Reference(
            "reference-mismatch",
            "The artifact gives {...} output(s); the reference gives {...}.",
            "compare models with the same outputs.",
        ),
        Reference(
            "remote-failed",
            "{...} on {...} failed (exit {...}): {...}.",
            "run the same with `ssh` by hand to see more; --debug shows the command.",
        ),
        Reference(
            "remote-python-missing",
            "{...} has no such Python ({...}): {...}.",
            "install python3 with numpy and the runtime there, or name the interpreter with --remote-python (e.g. ~/venv/bin/python).",
        ),
        Reference(
            "remote-timeout",
            "adb {...} took over {...} s.",
            "check the phone (screen lock, USB) and run again.",
        ),
        Reference(
            "save-failed",
            "Cannot write the profile to '{...}': {...}.",
            "keep that output, or give --save a path on a disk with space that you can write to.",
        ),
        Reference(
            "save-not-writable",
            "--save {...} is a folder; it takes a file name.",
            "give e.g. --save {...}.",
        ),
        Reference(
            "sensitivity-not-available",
            "Per-layer sensitivity and --max-drop are not available for --method {...} --format {...}.",
            "they work for: {...}.",
        ),
        Reference(
            "server-refused",
            "The server refused the request ({...}): {...}.",
            "check --model, the token ($EDGEPIPE_SERVE_TOKEN) and that the server serves this split.",
        ),
        Reference(
            "server-unreachable",
            "Cannot reach the server at {...}://{...}:{...}: {...}.",
            "start it with `edgepipe serve OUT` and check the address.",
            exit_code=_5,
        ),
        Reference("shape-mismatch", "An input shape that does not fit the model or the spec."),
        Reference(
            "split-needs-data",
            "Splitting trains the bottleneck, so it needs data.",
            "give data='builtin:digits', an .npz, an image folder or arrays (x, y).",
        ),
        Reference(
            "split-needs-torch",
            "Cut points are found in torch models with one input.",
            "give torchvision:NAME, builtin:..., or a factory.",
        ),
        Reference(
            "split-without-onnx",
            "{...} has no {...}.onnx to time the bottleneck's {...} with.",
            "run `edgepipe split` with -f onnx.",
        ),
        Reference(
            "ssh-auth",
            "{...} refused the login ({...}).",
            "give the key with --identity, or check that `ssh {...}` works without a password.",
        ),
        Reference(
            "target-error",
            "A target that is unknown, unreachable, or that the artifact does not fit.",
        ),
        Reference(
            "tflite-export-failed",
            "litert-torch could not convert the model.",
            "LiteRT lowers torch.export's core ATen ops; rewrite the failing part of forward(), or export ONNX/OpenVINO instead. --debug shows the traceback.",
        ),
        Reference(
            "tflite-from-onnx",
            "TFLite {...} needs a torch model: litert-torch converts torch models only.",
            "give the torch model as MODEL, or ask for --format onnx / openvino.",
        ),
        Reference(
            "tflm-no-arena",
            "TFLite Micro printed no arena total.",
            "this tflite-micro version reports allocations differently; please report it.",
        ),
        Reference("tflm-refused", "TFLite Micro cannot prepare this model: {...} ({...})."),
        Reference(
            "tolerance-exceeded",
            "{...} differs from the float model beyond the fp16 tolerance: {...}.",
            "the model has values fp16 cannot hold (over 65504, or tiny weights); keep it in fp32, or use int8 with calibration.",
        ),
        Reference(
            "training-data-missing",
            "--method binary needs training data: a binarized network is useless untrained, and none was given.",
            "give --data (a .npz, an image folder or builtin:digits) with samples like the model's real inputs; labels are optional (without them training is distillation from the float model only).",
        ),
        Reference(
            "unknown-artifact",
            "edgepipe has no runtime for '{...}' ({...}).",
            "artifacts are {...}.",
        ),
        Reference(
            "unknown-builtin-data", "No built-in dataset named {...}.", "built-in datasets: {...}."
        ),
        Reference(
            "unknown-builtin-model",
            "No built-in model named {...}.",
            "built-in models: {...} (did you mean {...}?)",
        ),
        Reference(
            "unknown-cut",
            "The model has no cut point {...}.",
            "did you mean {...}? valid cuts: {...}",
        ),
        Reference(
            "unknown-format",
            "Unknown format {...} for --method {...}.",
            "valid formats: {...} (several allowed).",
        ),
        Reference(
            "unknown-layer",
            "exclude names node(s) the model does not have: {...}.",
            "the model's compute nodes are: {...}.",
        ),
        Reference("unknown-method", "Unknown compression method {...}.", "methods: {...}."),
        Reference("unknown-option", "{...}.", "{...} takes: {...}."),
        Reference("unknown-target", "No target called {...}."),
        Reference(
            "unknown-torchvision-model",
            "torchvision has no architecture named {...}.",
            "did you mean {...}? 'python -c \"import torchvision; print(torchvision.models.list_models())\"' lists them all.",
        ),
        Reference(
            "unreachable",
            "A device or server that cannot be reached, or whose connection dropped mid-way.",
            "check the host, the port and that sshd runs there (`ssh {...}`).",
            exit_code=_5,
        ),
        Reference("unsupported", "An operator, format or method that a backend cannot handle."),
        Reference(
            "unsupported-operators",
            "Operators the converter of a requested format cannot handle, found before converting anything: {...}.",
            "{...}replace the layers named above with ops {...} supports; 'edgepipe inspect MODEL --format {...}' shows the same check.",
        ),
        Reference(
            "weak-token",
            "The token in ${...} is {...} characters long.",
            "use at least 16 random characters, e.g. `openssl rand -hex 24`.",
        ),
        Reference(
            "weights-invalid",
            "'{...}' does not hold a state dict (a mapping of names to tensors).",
            "save it with torch.save(model.state_dict(), path).",
        ),
        Reference(
            "weights-mismatch",
            "Weights that cannot be loaded into the model (wrong keys, shapes, or format).",
        ),
        Reference(
            "weights-not-found", "No weights file at '{...}'.", "check the path given to --weights."
        ),
        Reference(
            "weights-not-model",
            "'{...}' holds weights only; it has no architecture.",
            "give the architecture as MODEL (torchvision:NAME or package.module:factory) and this file as --weights {...}.",
        ),
        # new references go above this line (python scripts/error_list.py --add-missing)
    )
}
