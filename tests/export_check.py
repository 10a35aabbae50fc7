"""Runs an exported SavedModel in a fresh Python process that cannot import
this project and loads no Keras (TensorFlow alone, as TF Serving would), for
every task's tests.

`run_in_fresh_process(version_dir, inputs)` calls every signature whose
inputs are all given and returns its outputs as JSON values (strings
decoded as UTF-8), plus every signature's specs and the metadata.json, to
check against each other.
"""

import json
import os
import subprocess
import sys
import textwrap

# The head of every fresh-process script: importing this project fails.
IMPORT_BLOCKER = textwrap.dedent(r"""
    import json, os, sys

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("keras_attention", "training"):
                raise ImportError("blocked in this process: " + name)
            return None

    sys.meta_path.insert(0, Blocked())

    def project_importable():
        for name in ("keras_attention", "training"):
            try:
                __import__(name)
            except ImportError:
                continue
            return True
        return False
""")

SCRIPT = IMPORT_BLOCKER + textwrap.dedent(r"""
    if project_importable():
        raise SystemExit("the project is importable")

    import numpy as np
    import tensorflow as tf

    version_dir, request = sys.argv[1], sys.argv[2]
    if request.startswith("@"):  # a large request comes in a file
        with open(request[1:]) as handle:
            request = handle.read()
    request = json.loads(request)
    with open(os.path.join(version_dir, "assets.extra", "metadata.json")) as handle:
        metadata = json.load(handle)
    loaded = tf.saved_model.load(version_dir)

    def plain(value):
        if value.dtype == object:
            return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist() \
                if value.size else value.tolist()
        return value.tolist()

    def spec_json(spec):
        return {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape]}

    result = {"metadata": metadata, "signatures": {}, "specs": {}}
    for key, function in loaded.signatures.items():
        inputs = {}
        taken = function.structured_input_signature[1]
        for name, spec in request.items():
            if name not in taken:  # another signature's input
                continue
            if "bytes" in spec:  # raw bytes carried as latin-1
                inputs[name] = tf.constant([s.encode("latin-1") for s in spec["bytes"]])
            else:
                inputs[name] = tf.constant(np.array(spec["values"], dtype=spec["dtype"]))
        if set(inputs) == set(taken):  # `decode_step` takes what `encode` gives
            outputs = function(**inputs)
            result["signatures"][key] = {name: plain(value.numpy())
                                         for name, value in outputs.items()}
        result["specs"][key] = {
            "inputs": {name: spec_json(spec)
                       for name, spec in function.structured_input_signature[1].items()},
            "outputs": {name: spec_json(spec)
                        for name, spec in function.structured_outputs.items()},
        }
    # Nor Keras: TensorFlow's import skips it (TF_USE_LEGACY_KERAS, as the
    # package's commands and server run), and loading the export needs none.
    result["blocked_modules"] = sorted(m for m in sys.modules
                                       if m.split(".")[0] in ("keras_attention", "training",
                                                              "keras"))
    print("RESULT " + json.dumps(result))
""")


def run_in_fresh_process(version_dir, inputs, cwd, timeout=240):
    """`inputs`: `{input_name: {"bytes": [str as latin-1]}}` or
    `{input_name: {"values": nested list, "dtype": "uint8"}}`. Each signature
    is called with the inputs it takes, so one request can hold the inputs
    of several signatures (video: `frames`, `lengths`, `video_bytes` ...)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               TF_USE_LEGACY_KERAS="1")
    request = json.dumps(inputs)
    if len(request) > 100_000:  # past what one command-line argument may hold
        path = os.path.join(str(cwd), "request.json")
        with open(path, "w") as handle:
            handle.write(request)
        request = "@" + os.path.abspath(path)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, os.path.abspath(version_dir), request],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def check_metadata_matches_signatures(out):
    """metadata.json names every signature with its real inputs and outputs."""
    metadata = out["metadata"]
    everything = {**metadata["signatures"], **metadata["step_signatures"]}
    assert set(everything) == set(out["specs"])
    assert not set(metadata["signatures"]) & set(metadata["step_signatures"])
    for key, specs in out["specs"].items():
        described = everything[key]
        assert {name: {k: v for k, v in spec.items() if k != "kind"}
                for name, spec in described["inputs"].items()} == specs["inputs"], key
        assert described["outputs"] == specs["outputs"], key
        if key in metadata["signatures"]:
            attention_rank = len(specs["outputs"]["attention"]["shape"])
            assert len(described["attention_axes"]) == attention_rank, key
    assert out["blocked_modules"] == []
