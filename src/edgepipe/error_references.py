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
        Reference(
            "adb-failed",
            "An adb command failed on the Android device.",
            "check that `adb devices` lists the phone as 'device' and that it is unlocked; --debug shows the command.",
        ),
        Reference(
            "agent-failed",
            "The profiling agent failed while running the artifact.",
            "check that the artifact loads with `edgepipe eval` and that its runtime is installed; rerun with --debug.",
        ),
        Reference(
            "ambiguous-artifact",
            "A result with several artifacts was given where one artifact is needed.",
            "give one by path: result.out / result.artifacts[i]['path'].",
        ),
        Reference("artifact-not-found", "The artifact file does not exist.", "check the path."),
        Reference(
            "artifact-type",
            "The object given as an artifact is neither a path nor an edgepipe result.",
            "give the artifact's path, or the result of edgepipe.export or edgepipe.compress.",
        ),
        Reference(
            "artifact-unloadable",
            "The runtime cannot load the artifact file.",
            "check that the file is complete (re-export it) and matches its suffix.",
        ),
        Reference(
            "backend-missing",
            "An optional backend (a runtime or converter) that the command needs is not installed.",
            "pip install the extra the message names: 'edgepipe[openvino]', 'edgepipe[tflite]', 'edgepipe[lowbit]' or 'edgepipe[serve]' ('edgepipe[all]' for every backend).",
            exit_code=_4,
        ),
        Reference(
            "bad-bandwidth",
            "The link bandwidth cannot be read or is out of range.",
            "write a positive rate, e.g. 10Mbps, 500kbps or 1Gbps.",
        ),
        Reference("bad-batch", "The batch size option is below 1.", "give a positive batch size."),
        Reference(
            "bad-batch-size",
            "The batch size asked of the data is below 1.",
            "pass a positive batch size.",
        ),
        Reference(
            "bad-bit-width",
            "A quantization bit width is outside what ONNX QCDQ export supports.",
            "give a bit width from 2 to 8 (e.g. --method w4a8).",
        ),
        Reference(
            "bad-bits",
            "The --bits value for the bottleneck codes is outside 1 to 8.",
            "8 is the usual choice; 4 halves the bytes again.",
        ),
        Reference(
            "bad-bottleneck",
            "The --bottleneck channel count is below 1 or --stride is not 1 or 2.",
            "e.g. --bottleneck 4 --stride 1.",
        ),
        Reference(
            "bad-calib-size",
            "The --calib-size value is not a positive sample count.",
            "give a count such as 256 (100-1000 samples is typical).",
        ),
        Reference(
            "bad-calibration",
            "The calibration method is not one edgepipe knows.",
            "use minmax, percentile or entropy.",
        ),
        Reference(
            "bad-channels",
            "The image channel count is not one edgepipe can use.",
            "use channels 1 (grayscale) or 3 (RGB).",
        ),
        Reference(
            "bad-config",
            "A compression option is unknown, out of range or does not fit the other options.",
            "fix or leave out the option the message names (leaving it out gives its default).",
        ),
        Reference(
            "bad-cpus",
            "The --cpus list cannot be read or names CPUs this process may not use.",
            "write e.g. --cpus 0,1 or --cpus 0-3, using CPUs this process may run on.",
        ),
        Reference(
            "bad-dtype",
            "The dtype is not one edgepipe knows.",
            "use a numpy dtype name such as float32, float16, int64 or uint8.",
        ),
        Reference(
            "bad-example-inputs",
            "The example inputs are empty or are not tensors or arrays.",
            "give one torch tensor or numpy array per model input (a tuple for several).",
        ),
        Reference(
            "bad-host",
            "The --host address cannot be read, or the server cannot listen on it.",
            "for serve, give an address of this machine (127.0.0.1 or 0.0.0.0); for targets, write ssh://user@host[:port] or adb://SERIAL.",
        ),
        Reference(
            "bad-image-size",
            "The image size is not a positive int or a (height, width) pair.",
            "give one positive int (32) or a pair (height, width).",
        ),
        Reference(
            "bad-input",
            "Something given to edgepipe (a path, a spec or an option value) cannot be used.",
        ),
        Reference(
            "bad-input-limit",
            "The input size limit set in the environment is not a positive number of MiB.",
            "set it to a positive number of MiB, e.g. 2048.",
        ),
        Reference(
            "bad-input-option",
            "An --input option cannot be read as NAME:SHAPE:DTYPE.",
            "write NAME:SHAPE:DTYPE, e.g. --input input_ids:1x128:int64 (-1 or a name for a dynamic dimension).",
        ),
        Reference("bad-layout", "The data layout is not one edgepipe knows.", "use NCHW or NHWC."),
        Reference(
            "bad-limits",
            "A server limit or timeout option is out of range.",
            "leave the options out for their defaults.",
        ),
        Reference(
            "bad-max-drop",
            "The --max-drop accuracy budget is not a number of points of zero or more.",
            "give e.g. --max-drop 0.5 (top-1 points with labels, cosine points without).",
        ),
        Reference(
            "bad-model-arg",
            "A --model-arg option cannot be read as KEY=VALUE.",
            "write KEY=VALUE, e.g. --model-arg num_classes=10.",
        ),
        Reference(
            "bad-model-name",
            "The model name cannot name both a Triton model and a Kubernetes object.",
            "use letters, digits and '-', starting with a letter.",
        ),
        Reference(
            "bad-normalize",
            "The normalization is unknown or does not fit the images' channels.",
            "use none, unit or imagenet (imagenet needs 3 channels; use unit for grayscale).",
        ),
        Reference(
            "bad-opset",
            "The --opset value is outside the range ONNX knows.",
            "leave --opset out for the exporter's default, or give 17-23.",
        ),
        Reference(
            "bad-percentile",
            "The calibration percentile is outside 90 to 100.",
            "give the percentile of |activation| to keep, such as 99.999.",
        ),
        Reference(
            "bad-port",
            "A port option is not a TCP port number.",
            "give 1-65535, or 0 for any free port.",
        ),
        Reference(
            "bad-precision",
            "The precision is not one edgepipe knows for this command.",
            "use fp32 or fp16 (the head's precisions for a split plan).",
        ),
        Reference(
            "bad-recipe",
            "The recipe file is not a valid edgepipe recipe.",
            "fix the part the message names; examples/quickstart.yaml shows every key.",
        ),
        Reference(
            "bad-rtt",
            "The round-trip time cannot be read or is out of range.",
            "write a duration of zero or more, e.g. 20ms.",
        ),
        Reference(
            "bad-runs",
            "The run count or a profiling duration is out of range.",
            "give --runs 1 or more, and --duration and --warmup of 0 or more.",
        ),
        Reference(
            "bad-samples",
            "The --samples count for the parity check is below 1.",
            "give how many data samples parity should run on, e.g. 64.",
        ),
        Reference(
            "bad-server-url",
            "The server address cannot be read.",
            "write http://HOST:PORT (REST) or grpc://HOST:PORT.",
        ),
        Reference(
            "bad-split",
            "The data cannot be split into evaluation and calibration parts with the options given.",
            "pass eval_fraction in [0, 1) (e.g. 0.2) and calib_size >= 0, or give more samples.",
        ),
        Reference(
            "bad-split-part",
            "The part of the data to evaluate is not one edgepipe knows.",
            "give eval (the seeded held-out split) or all (every sample).",
        ),
        Reference(
            "bad-target-file",
            "A target file cannot be read or is not a valid target description.",
            "fix the part the message names; edgepipe/devices/schema.py lists the fields.",
        ),
        Reference(
            "bad-threads",
            "The --threads count is below 1.",
            "leave it out to use every usable core.",
        ),
        Reference(
            "bad-tolerance",
            "The parity tolerance --atol is negative.",
            "give a tolerance >= 0 (e.g. 1e-4), or leave it out for each precision's default.",
        ),
        Reference(
            "bad-training-option",
            "A training setting (epochs, lr, batch size, distillation, patience, validation "
            "fraction) of compress or split is out of range.",
            "give a value in the range the message names.",
        ),
        Reference(
            "benchmark-model-failed",
            "TFLite's benchmark_model gives no timings on the phone.",
            "run it by hand with `adb shell` to see why.",
        ),
        Reference(
            "bottleneck-too-large",
            "The bottleneck has at least as many channels as the tensor it should compress.",
            "give a --bottleneck below the tensor's channel count.",
        ),
        Reference(
            "budget-not-met",
            "No compressed variant stays within the accuracy budget.",
            "raise --max-drop, try another --calibration, or keep more of the model in float with --exclude; the best artifact found is kept.",
        ),
        Reference(
            "builtin-weights-missing",
            "The weights or training record of a built-in model are missing.",
            "run 'python -m edgepipe.zoo.train' to train the built-in models, or reinstall edgepipe.",
        ),
        Reference(
            "calibration-data-missing",
            "The compression method needs calibration data and none is given.",
            "give --data (a .npz, an image folder or builtin:digits) with samples like the model's real inputs.",
        ),
        Reference(
            "cannot-estimate",
            "The target has no throughput or memory bandwidth figures, so its latency cannot be estimated.",
            "add peak_gmacs and memory.bandwidth_gbps to the target's YAML file.",
        ),
        Reference(
            "cannot-write-report",
            "The pipeline's report cannot be written to the output folder.",
            "free some space (or give another -o) and run again: finished steps are kept and do not run twice.",
        ),
        Reference(
            "compressed-artifact-failed",
            "The compressed artifact does not run in its runtime.",
            "try another method or format, or keep the failing layer in float with --exclude; --debug shows the traceback.",
        ),
        Reference(
            "conflicting-options",
            "Options are given that cannot be used together.",
            "drop one of the options the message names.",
        ),
        Reference(
            "connection-lost",
            "The connection to the device drops during profiling.",
            "check the device (power, network, thermal shutdown) and run again; the partial figures are in the error's details.",
            exit_code=_5,
        ),
        Reference(
            "cut-not-a-feature-map",
            "The tensor at the cut point is not a feature map (N, C, H, W), so a bottleneck cannot be placed there.",
            "cut earlier, before pooling and flattening.",
        ),
        Reference(
            "data-bad-rank",
            "A data array has no sample axis plus at least one more axis.",
            "a single sample is x[None]; a list of scalars is x[:, None].",
        ),
        Reference(
            "data-dtype-mismatch",
            "The data's dtype does not match the model input's dtype.",
            "save the array in the dtype the model takes (floats scaled as the model expects).",
        ),
        Reference(
            "data-empty",
            "The data has no arrays or no samples.",
            "give data with at least one sample per input array.",
        ),
        Reference(
            "data-error",
            "The data cannot be loaded or is not usable (for example NaN values or bad labels).",
        ),
        Reference(
            "data-format",
            "edgepipe cannot read data in this format.",
            "save the arrays with numpy.savez(path, x=..., y=...) as a .npz file, or give a folder of class sub-folders of images.",
        ),
        Reference(
            "data-inputs-mismatch",
            "The data has a different number of inputs than the model.",
            "save one array per model input name in the .npz (plus y for labels).",
        ),
        Reference(
            "data-length-mismatch",
            "The data arrays hold different numbers of samples.",
            "every array (and y) needs the same length along its first axis.",
        ),
        Reference(
            "data-not-finite",
            "A data array holds NaN or Inf values.",
            "drop or repair those samples before using the data.",
        ),
        Reference(
            "data-not-found",
            "There is no file or folder at the data path.",
            "give a .npz file, a folder of class sub-folders of images, or a builtin: dataset.",
        ),
        Reference(
            "data-not-numeric",
            "A data array does not hold numbers.",
            "save inputs as numbers (float32 for float models, int64 for token ids and labels).",
        ),
        Reference(
            "data-several-inputs",
            "The data has several inputs where one is needed.",
            "pick one with dataset.inputs[NAME].",
        ),
        Reference(
            "data-shape-mismatch",
            "The data's sample shape does not match the model input's shape.",
            "give data shaped for the model (an .npz must hold arrays of (N, *sample shape); builtin:digits shapes itself).",
        ),
        Reference(
            "data-too-small",
            "The data has fewer samples than one batch.",
            "lower --batch or give more data.",
        ),
        Reference(
            "data-type",
            "The object given as data is not something edgepipe can use as data.",
            "give a DATA spec (a .npz, an image folder, builtin:...), numpy arrays or an edgepipe.Dataset.",
        ),
        Reference(
            "data-unreadable",
            "The data file is not a readable .npz file.",
            "save it with numpy.savez(path, x=..., y=...).",
        ),
        Reference(
            "device-disk-full",
            "The device has too little free space in /tmp for the artifact and its inputs.",
            "free space on the device or profile a smaller (quantized) artifact.",
        ),
        Reference(
            "device-memory-too-small",
            "The device has less memory available than the artifact needs.",
            "profile a smaller (quantized) artifact on this device.",
        ),
        Reference(
            "does-not-fit",
            "The model does not fit the target's memory.",
            "quantize to int8, lower the input resolution, or pick a bigger target (`edgepipe targets list`).",
        ),
        Reference(
            "eval-needs-labels-or-reference",
            "There is nothing to measure: the data has no labels and no reference model is given.",
            "give labelled data for top-1, or --reference MODEL for SQNR and cosine similarity.",
        ),
        Reference(
            "example-inputs-needed",
            "An nn.Module is given without example inputs, so its input shapes are unknown.",
            "pass example_inputs=torch.randn(1, 3, 32, 32) (a tuple for several inputs), shaped as one batch the model takes.",
        ),
        Reference(
            "export-failed",
            "Exporting the model to one or more formats fails.",
            "run `edgepipe export` on the failed format alone with --debug for the traceback.",
        ),
        Reference(
            "factory-failed",
            "The model factory raises an error or does not return an nn.Module.",
            "make the factory return the model (an nn.Module instance); --debug shows the traceback.",
        ),
        Reference(
            "factory-import",
            "The module or file of the factory spec cannot be imported.",
            "run edgepipe from the folder that holds the module, or add that folder to PYTHONPATH (a single file can be named as FILE.py:factory); --debug shows the traceback.",
        ),
        Reference(
            "factory-missing",
            "The module of the factory spec has no callable of that name.",
            "check the name after the ':' in FILE.py:factory or package.module:factory.",
        ),
        Reference(
            "fixed-batch",
            "The artifact has a fixed batch size that differs from the --batch asked for.",
            "use the artifact's batch size, or export with a dynamic batch (`edgepipe export ... --dynamic-batch`).",
        ),
        Reference(
            "forward-failed",
            "The model fails when run on inputs of the given shapes.",
            "check the input shapes (--input-shape) against what the model takes; --debug shows the model's traceback.",
        ),
        Reference(
            "fp16-failed",
            "The backend cannot make an fp16 version of the model.",
            "use --format onnx for fp16; --debug shows the traceback.",
        ),
        Reference(
            "host-key",
            "The device's SSH host key is unknown or has changed.",
            "connect once with `ssh HOST` and check the fingerprint, or add it to known_hosts.",
        ),
        Reference(
            "image-sizes-differ",
            "The images in the folder have different sizes and no image size is given.",
            "give an image size to resize them to.",
        ),
        Reference(
            "image-unreadable",
            "An image file in the data folder cannot be read.",
            "replace or remove the file.",
        ),
        Reference(
            "input-shape-needed",
            "The model's input shape cannot be told from the model itself.",
            "give it with --input-shape 1x3x224x224, or --input NAME:SHAPE:DTYPE for each input of a model with several.",
        ),
        Reference(
            "input-too-large",
            "One sample of an input would take more memory than the input size limit.",
            "check the shape; if it is right, raise the limit with EDGEPIPE_MAX_INPUT_MIB.",
        ),
        Reference(
            "inspect-failed",
            "edgepipe cannot build the model's graph.",
            "check that the model runs on inputs of the given shapes and dtypes; --debug shows the traceback.",
        ),
        Reference(
            "internal-error",
            "An unexpected error occurs: a bug in edgepipe or in a backend.",
            "rerun with --debug for the traceback and report it.",
            exit_code=_70,
        ),
        Reference(
            "labels-bad-shape",
            "The labels y are not a 1-D array of class indices.",
            "save one class index per sample (for one-hot labels, y.argmax(1)).",
        ),
        Reference(
            "labels-length-mismatch",
            "The data has a different number of labels than samples.",
            "y needs one label per sample of x.",
        ),
        Reference(
            "labels-negative",
            "The labels y hold negative values.",
            "labels are class indices 0..K-1; remap or drop the negative ones.",
        ),
        Reference(
            "labels-not-integer",
            "The labels y are not integers.",
            "save class indices as int64 (map class names to 0..K-1 first).",
        ),
        Reference(
            "labels-out-of-range",
            "Some labels are not class indices of the model.",
            "check that the labels are 0-based class indices for this model.",
        ),
        Reference(
            "manifest-invalid",
            "The output folder's manifest.json cannot be read or is not an edgepipe manifest.",
            "fix or remove it, or use a new output folder.",
        ),
        Reference(
            "manifest-too-new",
            "The output folder's manifest.json is written by a newer edgepipe.",
            "upgrade edgepipe, or use a new output folder.",
        ),
        Reference(
            "method-needs-torch",
            "The compression method needs a torch model, and the model given is not one.",
            "give the torch model (package.module:factory, torchvision:NAME, builtin:...) rather than its ONNX export.",
        ),
        Reference(
            "method-not-available",
            "The compression method is not available for the requested format or backend.",
            "pick a method the message lists for that format, or another --format.",
        ),
        Reference(
            "mixed-batch",
            "The model's inputs have different fixed batch sizes.",
            "export the model with one batch size for every input.",
        ),
        Reference(
            "model-construction",
            "torchvision cannot build the architecture with the given arguments.",
            "check the --model-arg values against the architecture's signature.",
        ),
        Reference("model-error", "The model cannot be loaded, or it fails when run."),
        Reference(
            "model-not-found",
            "The MODEL is neither an existing model file nor a model spec edgepipe knows.",
            "give a path to a .onnx or .pt2 file, torchvision:NAME, builtin:digits-cnn, FILE.py:factory or package.module:factory.",
        ),
        Reference(
            "model-spec",
            "The MODEL is empty, or is a file or object edgepipe cannot use as a source model.",
            "give a .onnx or .pt2 file, torchvision:NAME, builtin:digits-cnn, FILE.py:factory or package.module:factory; use `edgepipe eval` or `edgepipe profile` on deployment artifacts.",
        ),
        Reference(
            "model-type",
            "The object given as a model is not something edgepipe can load.",
            "give a MODEL spec string, a LoadedModel from edgepipe.load_model, or an nn.Module with example_inputs.",
        ),
        Reference(
            "multi-tensor-cut",
            "More than one tensor crosses the cut point, so the model cannot be split there.",
            "pick a single-tensor cut; `edgepipe split points MODEL` lists them.",
        ),
        Reference(
            "no-adb",
            "The adb client is not installed on this machine.",
            "install Android's platform-tools (apt install adb) and check `adb devices`.",
        ),
        Reference(
            "no-benchmark-model",
            "The benchmark_model binary is not found.",
            "download TFLite's prebuilt android_aarch64_benchmark_model or build it with bazel.",
        ),
        Reference(
            "no-class-folders",
            "The image folder has no class sub-folders.",
            "put the images of each class into a sub-folder named after the class.",
        ),
        Reference(
            "no-downloads",
            "Pretrained weights are asked for, and edgepipe does not download them.",
            "pass a local state dict with --weights FILE instead of a weights model-arg.",
        ),
        Reference(
            "no-graph-for-estimate",
            "There is no model graph to estimate the artifact's latency on the target from.",
            "profile the ONNX artifact of the same model, or export with edgepipe so manifest.json names the source.",
        ),
        Reference(
            "no-images",
            "Some class folders of the image folder hold no images.",
            "add images or remove the empty folders.",
        ),
        Reference(
            "no-ssh",
            "The OpenSSH client (`ssh`) is not installed on this machine.",
            "install openssh-client.",
        ),
        Reference(
            "no-tail-artifact",
            "The split run has no tail artifact for the requested runtime.",
            "export the tail in that runtime's format, or pick a --runtime that matches an exported tail.",
        ),
        Reference(
            "no-token-on-network",
            "The server would listen beyond this machine without an access token.",
            "set EDGEPIPE_SERVE_TOKEN to a secret of 16+ characters (e.g. `openssl rand -hex 24`), bind to 127.0.0.1, or pass --allow-no-token on a trusted network.",
        ),
        Reference(
            "not-a-split-run",
            "The folder given is not the output of `edgepipe split`.",
            "give the OUT folder of an `edgepipe split` run.",
        ),
        Reference(
            "not-an-mcu",
            "The target is not a microcontroller, so `targets check` does not apply.",
            "use `edgepipe profile ARTIFACT --target NAME` for latency and memory on it.",
        ),
        Reference(
            "not-tflite",
            "The tool used to run the artifact takes .tflite files only, and the artifact is not one.",
            "give the .tflite export (`edgepipe export MODEL --format tflite`).",
        ),
        Reference(
            "nothing-to-binarize",
            "The model has no layer that binarization can change.",
            "give --first-last-bits none to binarize the first and last layers too, or use --method w4a8 or int8.",
        ),
        Reference(
            "nothing-to-factorize",
            "The model has no layer that low-rank factorization can change.",
            "use --method int8 or fp16 for this model.",
        ),
        Reference(
            "nothing-to-quantize",
            "The model has no Conv1d, Conv2d or Linear layer to quantize.",
            "use --method int8 or fp16 for this model.",
        ),
        Reference(
            "npz-missing-array",
            "The .npz file has no array for one or more model inputs.",
            "save one array per model input name, e.g. numpy.savez(path, NAME=..., y=...).",
        ),
        Reference(
            "npz-missing-x",
            "The .npz file has no array named x.",
            "save the inputs as x (and labels as y): numpy.savez(path, x=..., y=...).",
        ),
        Reference(
            "onnx-check-failed",
            "The exported ONNX model fails onnx.checker.",
            "this is a bug in the exporter; --debug shows details.",
        ),
        Reference(
            "onnx-export-failed",
            "No ONNX exporter can export the model.",
            "rewrite the failing part of forward() with ops ONNX supports, or try another --opset; --debug shows the traceback.",
        ),
        Reference(
            "onnx-invalid",
            "The ONNX file is empty or is not a valid ONNX model.",
            "export it again (and keep any .onnx.data file beside it).",
        ),
        Reference(
            "openvino-export-failed",
            "OpenVINO cannot convert the model.",
            "export ONNX first and convert that (edgepipe export MODEL.onnx --format openvino); --debug shows the traceback.",
        ),
        Reference(
            "opset-conversion-failed",
            "onnx cannot convert the model to the requested opset.",
            "leave --opset out to keep the model's own opset.",
        ),
        Reference(
            "option-not-for-method",
            "An option is given that the compression method does not take.",
            "drop the option; the message lists what the method takes.",
        ),
        Reference(
            "out-not-a-folder",
            "The output path is a file, not a folder.",
            "give -o a folder (new or existing) for the run's artifacts.",
        ),
        Reference(
            "out-not-writable",
            "The output folder cannot be created.",
            "choose a folder you can write to with -o.",
        ),
        Reference(
            "output-exists",
            "The output folder exists and is not empty.",
            "give a new folder with -o.",
        ),
        Reference(
            "packed-mismatch",
            "The packed weights file is not an edgepipe packed file, or does not reproduce the exported model.",
            "write it again with `edgepipe compress --method binary`; --debug shows the traceback.",
        ),
        Reference(
            "parity-inputs",
            "The number of input arrays given does not match the model's inputs.",
            "give one array per model input, in order.",
        ),
        Reference(
            "partly-failed",
            "Some of the requested formats fail while the others are made.",
            "the other formats' artifacts are in OUT and its manifest.json; run the failed format alone with --debug for its details.",
        ),
        Reference(
            "patch-plan-unsupported",
            "No patch plan can be made for the model.",
            "give a torch model with one image input and a Sequential body of blocks (a torchvision CNN or a factory returning one).",
        ),
        Reference(
            "pickle-failed",
            "The pickled model file cannot be unpickled.",
            "the classes the pickle refers to must be importable from the current directory or PYTHONPATH.",
        ),
        Reference(
            "pickle-refused",
            "The file holds pickled Python objects, which edgepipe refuses to load because loading them can run code.",
            "save the model with torch.export.save or its weights as a state dict; pass the trust flag the hint names only for files you trust.",
        ),
        Reference(
            "port-unavailable",
            "The server cannot listen on the port.",
            "pick another --port or --grpc-port (0 takes any free one), or stop what holds it.",
        ),
        Reference(
            "profile-timeout",
            "Profiling takes longer than the time allowed.",
            "lower --runs or --duration, or check that the model runs at all with `edgepipe eval`.",
        ),
        Reference(
            "pt2-invalid",
            "The .pt2 file is not a readable torch.export program.",
            "save it with torch.export.save(torch.export.export(model, args), path).",
        ),
        Reference(
            "quantization-failed",
            "The backend cannot quantize the model.",
            "keep the failing layer in float with --exclude, or try another --format or --method; --debug shows the traceback.",
        ),
        Reference("recipe-not-found", "The recipe file cannot be read.", "check the path."),
        Reference(
            "recipe-too-large",
            "The recipe expands to too many values through YAML anchors and aliases.",
            "remove the repeated aliases; a recipe needs a few dozen values.",
        ),
        Reference(
            "reference-mismatch",
            "The artifact's outputs differ in number or shape from the reference's.",
            "compare models with the same outputs.",
        ),
        Reference(
            "remote-failed",
            "A command on the remote device fails.",
            "run the same with `ssh` by hand to see more; --debug shows the command.",
        ),
        Reference(
            "remote-python-missing",
            "The remote device has no Python interpreter at the given path.",
            "install python3 with numpy and the runtime there, or name the interpreter with --remote-python (e.g. ~/venv/bin/python).",
        ),
        Reference(
            "remote-timeout",
            "A command or copy on the device takes longer than the time allowed.",
            "check the device and the link (screen lock and USB for a phone), or lower --runs or --duration.",
        ),
        Reference(
            "save-failed",
            "The profile cannot be written to the --save path; the measured profile is printed instead.",
            "give --save a path on a disk with space that you can write to.",
        ),
        Reference(
            "save-not-writable",
            "The --save path cannot be written, so nothing is measured.",
            "give --save a file name in an existing folder you can write to.",
        ),
        Reference(
            "sensitivity-not-available",
            "Per-layer sensitivity and --max-drop are not available for this method and format.",
            "leave --max-drop out, or use a method and format the message lists.",
        ),
        Reference(
            "server-refused",
            "The server refuses the request.",
            "check --model, the token ($EDGEPIPE_SERVE_TOKEN) and that the server serves this split.",
        ),
        Reference(
            "server-unreachable",
            "The server cannot be reached.",
            "start it with `edgepipe serve OUT` and check the address.",
            exit_code=_5,
        ),
        Reference("shape-mismatch", "An input shape does not fit the model or the spec."),
        Reference(
            "split-needs-data",
            "The command needs data and none is given.",
            "give --data (builtin:digits, an .npz or an image folder).",
        ),
        Reference(
            "split-needs-torch",
            "Splitting needs a torch model with one input, and the model given is not one.",
            "give the model as torchvision:NAME, builtin:..., or a factory; ONNX files cannot be retrained.",
        ),
        Reference(
            "split-without-onnx",
            "The split run has no ONNX head or tail to time the bottleneck with.",
            "run `edgepipe split` with -f onnx.",
        ),
        Reference(
            "ssh-auth",
            "The device refuses the SSH login.",
            "give the key with --identity, or check that `ssh HOST` works without a password.",
        ),
        Reference(
            "target-error", "A target is unknown or unreachable, or the artifact does not fit it."
        ),
        Reference(
            "tflite-export-failed",
            "litert-torch cannot convert the model to TFLite.",
            "rewrite the failing part of forward(), or export ONNX or OpenVINO instead; --debug shows the traceback.",
        ),
        Reference(
            "tflite-from-onnx",
            "TFLite export needs a torch model, and the model given is ONNX.",
            "give the torch model as MODEL, or ask for --format onnx or openvino.",
        ),
        Reference(
            "tflm-no-arena",
            "TFLite Micro reports no arena size for the model.",
            "this tflite-micro version reports allocations differently; please report it.",
        ),
        Reference(
            "tflm-refused",
            "TFLite Micro cannot prepare or run the model.",
            "make a full-int8 model with `edgepipe compress MODEL --method int8 --format tflite --data D`.",
        ),
        Reference(
            "tolerance-exceeded",
            "A result falls outside its tolerance, such as an artifact's parity with the float model.",
            "for fp16, keep the model in fp32 or use int8 with calibration; --debug shows the details.",
        ),
        Reference(
            "training-data-missing",
            "The method needs training data and none is given, or the training split is empty.",
            "give --data (a .npz, an image folder or builtin:digits) with enough samples.",
        ),
        Reference(
            "unknown-artifact",
            "edgepipe has no runtime for the artifact's file type.",
            "give a .onnx (ONNX Runtime), .tflite (LiteRT), .xml (OpenVINO) or .pt2 (torch) artifact.",
        ),
        Reference(
            "unknown-builtin-data",
            "There is no built-in dataset of that name.",
            "use builtin:digits or builtin:fashion-mnist.",
        ),
        Reference(
            "unknown-builtin-model",
            "There is no built-in model of that name.",
            "use builtin:digits-cnn, builtin:digits-mlp or builtin:fashion-mnist-cnn.",
        ),
        Reference(
            "unknown-cut",
            "The model has no cut point of that name.",
            "`edgepipe split points MODEL` lists the valid cuts.",
        ),
        Reference(
            "unknown-format",
            "The format is not one edgepipe can export or compress to.",
            "use --format onnx, tflite or openvino (several are allowed) as the method supports.",
        ),
        Reference(
            "unknown-layer",
            "The exclude list names nodes the model does not have.",
            "use node names of the float .onnx (`edgepipe inspect MODEL` lists them).",
        ),
        Reference(
            "unknown-method",
            "The compression method is not one edgepipe or the chosen backend knows.",
            "use --method int8, int8-dynamic, fp16, lowrank, binary or wNaM (e.g. w4a8).",
        ),
        Reference(
            "unknown-option",
            "A config is given an option it does not have, or lacks one it needs.",
            "pass only the fields of that config class, and every field it requires.",
        ),
        Reference(
            "unknown-target",
            "There is no target of that name.",
            "`edgepipe targets list` shows every target.",
        ),
        Reference(
            "unknown-torchvision-model",
            "torchvision has no architecture of that name.",
            'python -c "import torchvision; print(torchvision.models.list_models())" lists them all.',
        ),
        Reference(
            "unreachable",
            "A device or server cannot be reached, or its connection drops mid-way.",
            "check the host, the port and that sshd runs there (try `ssh HOST` by hand).",
            exit_code=_5,
        ),
        Reference("unsupported", "An operator, format or method is not supported by the backend."),
        Reference(
            "unsupported-operators",
            "The model uses operators that the converter of a requested format cannot handle.",
            "replace those layers with supported ops, or pick another --format; `edgepipe inspect MODEL --format FORMAT` shows the same check.",
        ),
        Reference(
            "weak-token",
            "The server's access token is too short.",
            "use at least 16 random characters, e.g. `openssl rand -hex 24`.",
        ),
        Reference(
            "weights-invalid",
            "The weights file is empty, unreadable, or does not hold a state dict.",
            "save it with torch.save(model.state_dict(), path) or safetensors.torch.save_file.",
        ),
        Reference(
            "weights-mismatch",
            "The weights do not match the model (wrong keys, shapes, or format).",
            "check that MODEL is the architecture these weights were trained with (and its --model-arg values, e.g. num_classes).",
        ),
        Reference(
            "weights-not-found",
            "There is no weights file at the --weights path.",
            "check the path given to --weights.",
        ),
        Reference(
            "weights-not-model",
            "The model file holds weights only, not an architecture.",
            "give the architecture as MODEL (torchvision:NAME or package.module:factory) and this file as --weights.",
        ),
        Reference(
            "openvino-invalid",
            "The .xml file is not a complete OpenVINO IR, or its .bin weights are missing or short.",
            "export it again (`edgepipe export MODEL --format openvino`) and keep the .xml and its .bin together.",
        ),
        Reference(
            "safetensors-invalid",
            "The .safetensors weights file is truncated or not safetensors.",
            "save it with safetensors.torch.save_file(model.state_dict(), path).",
        ),
        Reference(
            "tflite-invalid",
            "The .tflite file is not a complete TFLite flatbuffer.",
            "export it again (`edgepipe export MODEL --format tflite`); a copy cut short is the usual cause.",
        ),
        Reference(
            "document-invalid",
            "A JSON document edgepipe wrote (a manifest, a report, a profile) does not have the shape it should.",
            "the file was edited by hand or written by another tool; fix or remove it (edgepipe writes it again).",
        ),
        Reference(
            "bad-catalog-dir",
            "The user catalog folder (--catalog or EDGEPIPE_CATALOG), or the path given to check, does not exist or cannot be written.",
            "give an existing folder of target YAML files, or unset EDGEPIPE_CATALOG.",
        ),
        Reference(
            "format-not-on-target",
            "The artifact's format has no runtime on that target, so it cannot run there and is not estimated.",
            "export or compress to a format the target runs (the message names them; microcontrollers run .tflite only).",
        ),
        Reference(
            "invalid-targets",
            "One or more target files do not follow the catalog's schema or clash with a bundled target.",
            "fix each file as its line says; edgepipe/devices/schema.py lists the fields.",
        ),
        Reference(
            "no-user-catalog",
            "`targets add` was given no user catalog folder to copy the target into.",
            "pass --catalog DIR or set EDGEPIPE_CATALOG=DIR.",
        ),
        Reference(
            "target-exists",
            "The user catalog already has a target file of that name.",
            "pass --force to replace it, or rename the target.",
        ),
        Reference(
            "target-name-clash",
            "A user target file has the name of a bundled target; user targets add to the catalog and never replace a bundled one.",
            "rename the file and its `name:` key, or remove it.",
        ),
        Reference(
            "bad-artifact-name",
            "The name given for the artifact files is not a plain file name.",
            "give a stem of letters, digits and _ . + - (e.g. --name mynet); the suffixes are added and -o OUT says the folder.",
        ),
        Reference(
            "fashion-mnist-missing",
            "builtin:fashion-mnist needs Debian's dataset-fashion-mnist package, which is not installed.",
            "apt install dataset-fashion-mnist, or give --data FOLDER holding the four Fashion-MNIST idx files.",
        ),
        Reference(
            "idx-bad-magic",
            "A file of an idx folder does not start like an idx file (00 00, a known dtype code, one or more dimensions).",
            "give the MNIST-format files (train-images-idx3-ubyte and its kin, plain or .gz); a gzipped file must be named .gz.",
        ),
        Reference(
            "idx-count-mismatch",
            "The images and labels files of the train or t10k set hold different numbers of samples.",
            "take the images and labels files from the same download of the same dataset.",
        ),
        Reference(
            "idx-files-missing",
            "The idx folder lacks one or more of its four files (train and t10k images and labels).",
            "put train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (plain or .gz) in the folder.",
        ),
        Reference(
            "idx-label-range",
            "Labels of an idx folder are outside its classes (the dataset's class count, or the classes the train labels name).",
            "the labels file is corrupt or from another dataset; get it again from its source.",
        ),
        Reference(
            "idx-size-mismatch",
            "The train and t10k images of an idx folder have different heights or widths.",
            "take both sets from the same dataset.",
        ),
        Reference(
            "idx-too-large",
            "An idx file's header declares more values than edgepipe reads from one file (4 GiB).",
            "the header is corrupt, or the data is too large to load into memory; split it into smaller files.",
        ),
        Reference(
            "idx-trailing-data",
            "An idx file holds more data than its header declares (a longer file, or a gzip stream that inflates past the declared size).",
            "the file is corrupt, or its dimensions are wrong; get it again from its source.",
        ),
        Reference(
            "idx-truncated",
            "An idx file is shorter than its header (or the values its header declares).",
            "the file was cut short (an interrupted download?); get it again from its source.",
        ),
        Reference(
            "idx-unreadable",
            "An idx file cannot be read, or a .gz file is not valid gzip data.",
            "check the file; a .gz file must be gzip-compressed idx data, a plain file must not be compressed.",
        ),
        Reference(
            "idx-wrong-kind",
            "An idx file holds values of the wrong type or rank for its name (images must be N x H x W bytes, labels N bytes), or no samples.",
            "check the file names: images go in *-images-idx3-ubyte, labels in *-labels-idx1-ubyte.",
        ),
        Reference(
            "bad-codec-quality",
            "A JPEG or WebP quality asked for in `split plan` is outside what the codec takes "
            "(JPEG 5 to 95, WebP 5 to 100).",
            "give --quality within the codec's range (e.g. --quality 50); PNG is lossless and "
            "takes none.",
        ),
        Reference(
            "codec-needs-data",
            "Input codecs were asked for without data: their bytes and accuracy are measured on "
            "the eval samples of --data.",
            "give --data (e.g. builtin:digits), or --codec none.",
        ),
        Reference(
            "unknown-codec",
            "The input codec named is not one edgepipe measures (png, jpeg, webp), or `none` "
            "was given with other codecs.",
            "give --codec png, jpeg or webp (repeat for several), or --codec none alone.",
        ),
        Reference(
            "codec-needs-image",
            "An input codec was asked for a model whose input is not a gray or RGB image "
            "(feature vectors, or channels other than 1 or 3): an image codec cannot code it.",
            "input codecs apply to N x C x H x W or N x H x W x C inputs with C = 1 or 3; give "
            "--codec none, or leave --codec out.",
        ),
        Reference(
            "bad-rate-weight",
            "--rate-weight (the entropy-coded bottleneck's λ, per bit) is 0, negative or not "
            "a finite number.",
            "give a positive weight, e.g. --rate-weight 1e-4; larger sends fewer bytes.",
        ),
        Reference(
            "bad-target-bytes",
            "--target-bytes is below what a bitstream can be: its 6-byte header and one bit "
            "of codes per sample.",
            "give a target of at least 6.125 bytes per sample, e.g. --target-bytes 64.",
        ),
        Reference(
            "conflicting-encodings",
            "split run was given both --zlib and --entropy; a request carries one encoding.",
            "keep --entropy for a split made with --entropy, or --zlib for any split.",
        ),
        Reference(
            "rate-options-conflict",
            "Both --rate-weight and --target-bytes were given; with a target the training "
            "steers the weight itself.",
            "keep one of them.",
        ),
        Reference(
            "rate-without-entropy",
            "--rate-weight or --target-bytes was given without --entropy (or a recipe's "
            "rate_weight / target_bytes without entropy: true).",
            "add --entropy, or leave them out.",
        ),
        Reference(
            "split-without-entropy",
            "split run --entropy was pointed at a split made without --entropy (or its "
            "entropy.npz is missing): there are no code tables to write bitstreams with.",
            "split again with --entropy, or send the codes as they are or with --zlib.",
        ),
        Reference(
            "executorch-export-failed",
            "ExecuTorch could not convert the model; the message names the stage (export, "
            "to_edge/lowering, to_executorch) and the operators the converter named.",
            "rewrite the failing part of forward(), or export ONNX or OpenVINO instead; --debug shows the traceback.",
        ),
        Reference(
            "executorch-from-onnx",
            "ExecuTorch export needs a torch model, and the model given is ONNX.",
            "give the torch model as MODEL, or ask for --format onnx or openvino.",
        ),
        Reference(
            "executorch-invalid",
            "The .pte file is not a complete ExecuTorch program (wrong identifier, no extended "
            "header, or shorter than its header declares).",
            "export it again (`edgepipe export MODEL --format executorch`); a copy cut short is the usual cause.",
        ),
        Reference(
            "hf-load-failed",
            "transformers could not read the config or load the model of an hf:FOLDER (an "
            "architecture it does not define, one that needs remote code, or weights that do "
            "not match config.json).",
            "save config and weights together with save_pretrained; edgepipe loads only "
            "architectures transformers itself defines (no trust_remote_code).",
        ),
        Reference(
            "hf-no-config",
            "The folder of an hf:FOLDER spec has no config.json, so it is not a Hugging Face "
            "model folder.",
            "save the model with model.save_pretrained(DIR), which writes config.json and "
            "model.safetensors.",
        ),
        Reference(
            "hf-no-tokenizer",
            "Text data was given for an hf:FOLDER model, but no tokenizer could be loaded from "
            "the folder (no tokenizer.json, tokenizer_config.json or vocabulary there).",
            "save the tokenizer into the model folder with tokenizer.save_pretrained(FOLDER).",
        ),
        Reference(
            "hf-no-weights",
            "The folder of an hf:FOLDER spec has config.json but no weights "
            "(model.safetensors, sharded safetensors with their index, or "
            "pytorch_model.bin), or its shard index names shards that are missing.",
            "save the model with model.save_pretrained(DIR), or download every weight file.",
        ),
        Reference(
            "hf-not-a-folder",
            "An hf: MODEL spec does not name an existing folder: edgepipe loads Hugging Face "
            "models from a local folder only and never downloads a hub id.",
            "on a machine with network run `huggingface-cli download ID --local-dir DIR` "
            "and pass hf:DIR.",
        ),
        Reference(
            "hf-unsupported",
            "The hf:FOLDER model is of a kind edgepipe cannot take its inputs from the config "
            "of yet (a decoder, an encoder-decoder other than Whisper, an unknown main input).",
            "supported: text encoders (BERT, MiniLM, DistilBERT, RoBERTa), vision models "
            "taking pixel_values (ViT) and Whisper's encoder.",
        ),
        Reference(
            "text-bad-label",
            "A line of a texts.tsv is not label<TAB>text, or its label is neither a class "
            "index nor a class name in the model's config.json (label2id).",
            "write each line as a label, a tab and the text; use class indices or the "
            "config's class names.",
        ),
        Reference(
            "text-needs-tokenizer",
            "Text data (.txt or .tsv) was given for a model without a tokenizer edgepipe "
            "knows of (only hf:FOLDER models with a tokenizer have one), or one without a "
            "fixed-length input_ids input.",
            "use text with an hf:FOLDER text model, or give token arrays in a .npz.",
        ),
        Reference(
            "bad-group-size",
            "The --group-size of int4-weight is not a power of two above 0, or (for tflite) "
            "not a block size ai-edge-quantizer offers.",
            "give 32, 64, 128 or 256, or leave it out for each format's default (onnx and "
            "openvino 128, tflite and executorch 32).",
        ),
        Reference(
            "bad-sequence-length",
            "The --sequence-length asked for is longer than the model's position table, or below 1.",
            "give a length from 1 to the model's max_position_embeddings.",
        ),
        Reference(
            "no-dynamic-sequence",
            "--sequence-length was given for an artifact whose sequence length is fixed, or that has none.",
            "drop --sequence-length, or profile the ONNX, OpenVINO or float .pte export of the same model.",
        ),
        # new references go above this line (python scripts/error_list.py --add-missing)
    )
}
