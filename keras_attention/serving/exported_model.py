"""One exported SavedModel version, loaded with TensorFlow alone.

Shared by the REST server and the command line: it finds a version in TF
Serving's layout, describes its signatures (names, dtypes, shapes) and
runs one on numpy inputs. It imports no layer and no training code, so
it runs any SavedModel, ours or not.
"""

import os
import re
from typing import NamedTuple

import numpy as np

from keras_attention.export_format import GREEDY_SIGNATURE, read_metadata

DEFAULT_SIGNATURE = GREEDY_SIGNATURE  # TensorFlow's default key: what TF Serving runs unasked
_VERSION = re.compile(r"^[0-9]+$")


class ModelNotFoundError(FileNotFoundError):
    """A path that holds no SavedModel version (named in the message)."""


class TensorInfo(NamedTuple):
    """One signature input or output: numpy dtype (`object` for strings),
    TensorFlow dtype name (`DT_STRING` ...) and shape (`None` = any)."""

    dtype: np.dtype
    tf_dtype: str
    shape: tuple

    @property
    def is_string(self):
        return self.tf_dtype == "DT_STRING"


class SignatureInfo(NamedTuple):
    name: str
    inputs: dict   # name -> TensorInfo
    outputs: dict  # name -> TensorInfo


def is_version_dir(path):
    """Whether `path` is a SavedModel directory (`saved_model.pb` inside)."""
    return os.path.isfile(os.path.join(path, "saved_model.pb")) or os.path.isfile(
        os.path.join(path, "saved_model.pbtxt"))


def list_versions(base_path):
    """Versions under `base_path` (`<base>/<int>/saved_model.pb`), ascending.

    Hidden or non-numeric folders (an exporter's `.3.partial`) are not versions.
    """
    try:
        names = os.listdir(base_path)
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names
                  if _VERSION.match(n) and is_version_dir(os.path.join(base_path, n)))


def find_version_dir(path, version=None):
    """`path` is a version directory, or a base holding versions: the chosen
    version's directory (the highest unless `version` is given)."""
    if not os.path.exists(path):
        raise ModelNotFoundError(f"{path}: no such model directory")
    if not os.path.isdir(path):
        raise ModelNotFoundError(f"{path}: is a file, expected a SavedModel directory "
                                 "or a folder of numbered versions")
    if version is None and is_version_dir(path):
        return path
    versions = list_versions(path)
    if not versions:
        raise ModelNotFoundError(
            f"{path}: holds no SavedModel (no saved_model.pb, and no numbered version "
            "folder <version>/saved_model.pb inside)")
    if version is None:
        return os.path.join(path, str(versions[-1]))
    if int(version) not in versions:
        raise ModelNotFoundError(f"{path}: has no version {version} (it has "
                                 f"{', '.join(map(str, versions))})")
    return os.path.join(path, str(int(version)))


def tf_error_summary(error):
    """The line of a TensorFlow error that says what went wrong, without
    the graph node and op names around it.

    Example:

    >>> tf_error_summary(ValueError("Graph execution error:\\n\\nDetected at node d\\n"
    ...                             "Unknown image file format.\\n\\t [[{{node d}}]] [Op:f]"))
    'Unknown image file format.'
    """
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines()]
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    useful = [line for line in lines if line and not line.startswith(noise)]
    line = (useful or lines or [type(error).__name__])[0]
    return re.sub(r"\s*\[Op:[^\]]*\]$", "", line)


def _tensor_info(spec):
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
    dtype = np.dtype(object) if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype)
    return TensorInfo(dtype, types_pb2.DataType.Name(spec.dtype.as_datatype_enum), shape)


class ExportedModel:
    """A loaded SavedModel version.

    Args:
        path: A version directory, or a base directory of numbered versions
            (the highest is loaded unless `version` is given).
        version: Optional version number.

    Example:

        model = ExportedModel("runs/translation-main-en-es/export/translator")
        out = model.predict("serving_default",
                            {"source_text": np.array([b"Jesus wept."], object)})
        out["text"]   # [B] bytes
    """

    def __init__(self, path, version=None):
        self.path = find_version_dir(path, version)  # before TensorFlow loads: fast errors
        import tensorflow as tf

        self.version = int(os.path.basename(os.path.normpath(self.path))) \
            if _VERSION.match(os.path.basename(os.path.normpath(self.path))) else None
        try:
            self._loaded = tf.saved_model.load(self.path)
        except Exception as error:  # a corrupt or half-copied SavedModel
            raise ModelNotFoundError(f"{self.path}: cannot load the SavedModel: "
                                     f"{str(error).splitlines()[0]}") from error
        self._functions = dict(self._loaded.signatures)
        if not self._functions:
            raise ModelNotFoundError(f"{self.path}: the SavedModel has no signatures")
        self.signatures = {}
        for name, function in self._functions.items():
            inputs = {key: _tensor_info(spec)
                      for key, spec in function.structured_input_signature[1].items()}
            outputs = {key: _tensor_info(spec)
                       for key, spec in function.structured_outputs.items()}
            self.signatures[name] = SignatureInfo(name, inputs, outputs)
        self.metadata = read_metadata(self.path, missing_ok=True)

    @property
    def task(self):
        return self.metadata.get("task")

    def signature(self, name=None):
        """The `SignatureInfo` of `name` (default `serving_default`); a
        `KeyError` naming the known ones otherwise."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise KeyError(f"Serving signature name: \"{name}\" not found in signature def "
                           f"(this model has {', '.join(sorted(self.signatures))})")
        return self.signatures[name]

    def signature_defs(self):
        """The serving meta graph's `SignatureDef` protos, by name (what TF
        Serving's metadata endpoint reports)."""
        from tensorflow.core.protobuf import saved_model_pb2

        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(self.path, "saved_model.pb"), "rb") as handle:
            saved_model.ParseFromString(handle.read())
        for meta_graph in saved_model.meta_graphs:
            if "serve" in meta_graph.meta_info_def.tags:
                return dict(meta_graph.signature_def)
        return dict(saved_model.meta_graphs[0].signature_def)

    def predict(self, signature_name, inputs):
        """Runs a signature. `inputs`: name -> numpy array (strings as an
        object array of bytes). Returns name -> numpy array."""
        import tensorflow as tf

        info = self.signature(signature_name)
        tensors = {}
        for key, spec in info.inputs.items():
            value = inputs[key]
            tensors[key] = tf.constant(value, dtype=tf.string) if spec.is_string \
                else tf.constant(value, dtype=tf.as_dtype(spec.dtype))
        outputs = self.function(info.name)(**tensors)
        return {key: value.numpy() for key, value in outputs.items()}

    def function(self, signature_name):
        """The signature's concrete function: keyword tensors in, a dict of
        tensors out (`predict` without the numpy conversions)."""
        return self._functions[self.signature(signature_name).name]
