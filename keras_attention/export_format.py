"""The on-disk format of an exported model: what the exporter writes and the
server, the command line and every loader read.

A version folder in TF Serving's layout (`<base>/<name>/<version>/`) holds
a SavedModel and `assets.extra/metadata.json` (`METADATA_PATH`), which
TensorFlow Serving copies along and ignores. Every export has the greedy
signature `serving_default` (TensorFlow's default key, so a request that
names no signature gets it) and the beam signature `beam_search`; a task
may add pairs of its own (video: `gif_greedy`/`gif_beam`). Their outputs
share the names of `OUTPUT_NAMES`; the metadata names each output's axes
(`output_axes`) and, for each axis that grows with a batch's longest row,
the output that holds each row's extent (`axis_lengths`).

Beside them, step-level signatures let a client (or a server that batches
decoding steps) run the search itself: `encode` (the first input's; a task
may add more, video's `gif_encode`) turns inputs into the decoding state
and constants, and `decode_step` turns the previous tokens, state and
constants into next-token log-probabilities, the new state and the
attention row; `finish` turns a finished search's token ids, lengths and
attention (with `encode`'s `rows`) into the answer's `text`, `tokens`,
`token_ids`, `length` and `attention`, and `encode`'s `extras` are answer
outputs as they are. Metadata `step_signatures` describes them.

No TensorFlow: a reader of the format starts fast.
"""

import json
import os

import numpy as np

GREEDY_SIGNATURE = "serving_default"
BEAM_SIGNATURE = "beam_search"
# Step-level signatures (metadata `step_signatures`): a client runs the search.
ENCODE_SIGNATURE = "encode"
DECODE_STEP_SIGNATURE = "decode_step"
FINISH_SIGNATURE = "finish"
OUTPUT_NAMES = ("text", "tokens", "token_ids", "length", "score", "attention")
METADATA_PATH = os.path.join("assets.extra", "metadata.json")
METADATA_FORMAT = 1  # the `format_version` this package writes and reads


def read_metadata(version_dir, missing_ok=False):
    """The `metadata.json` of an exported version, as a dict.

    Args:
        version_dir: The version folder (`<base>/<name>/<version>`).
        missing_ok: Return `{}` when the file is absent (a SavedModel
            exported by someone else) instead of raising.

    Raises:
        FileNotFoundError: No metadata, and `missing_ok` is False.
        ValueError: The file is not a JSON object, or its `format_version`
            is not an integer or newer than this package reads (each
            message starts with the file's path).

    Example:
        >>> import json, os, tempfile
        >>> version = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(version, "assets.extra"))
        >>> with open(os.path.join(version, METADATA_PATH), "w") as handle:
        ...     json.dump({"format_version": 1, "task": "translation"}, handle)
        >>> read_metadata(version)["task"]
        'translation'
        >>> read_metadata(tempfile.mkdtemp(), missing_ok=True)
        {}
    """
    path = os.path.join(version_dir, METADATA_PATH)
    if missing_ok and not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        try:
            metadata = json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: a JSON object expected, found {type(metadata).__name__}")
    version = metadata.get("format_version", METADATA_FORMAT)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: format_version must be an integer, found {version!r}")
    if version > METADATA_FORMAT:
        raise ValueError(f"{path}: format_version {version!r} is newer than this package "
                         f"reads ({METADATA_FORMAT}); upgrade keras-attention-kit")
    return metadata


def signature_metadata(metadata, signature_name):
    """What the metadata says of one signature (`inputs`, `output_axes`,
    `axis_lengths`, `decoding` ...), `{}` when it says nothing.

    Example:
        >>> signature_metadata({"signatures": {"beam_search": {"beam_width": 4}}},
        ...                    "beam_search")
        {'beam_width': 4}
        >>> signature_metadata({}, "serving_default")
        {}
    """
    return metadata.get("signatures", {}).get(signature_name, {})


def cut_to_extents(values, axes, extents):
    """Each array of `values` cut along its named axes to `extents`: the one
    reader of `output_axes` for the server's batching and the command line.

    Args:
        values: Output name -> array.
        axes: Output name -> the names of its axes, in order (an
            `output_axes` entry, or its tail once leading axes are indexed
            away). An output without an entry is left whole.
        extents: Axis name -> how many positions to keep (from the outputs
            that `axis_lengths` names).

    Returns:
        A new dict of the cut arrays.

    Example:
        >>> import numpy as np
        >>> out = cut_to_extents({"tokens": np.zeros((2, 5)), "length": np.array([3, 1])},
        ...                      {"tokens": ["batch", "output_token"], "length": ["batch"]},
        ...                      {"output_token": 3})
        >>> out["tokens"].shape, out["length"].tolist()
        ((2, 3), [3, 1])
    """
    cut = {}
    for name, value in values.items():
        named = list(axes.get(name, []))[:np.ndim(value)]
        if not any(axis in extents for axis in named):  # scalars, bytes: as they are
            cut[name] = value
            continue
        cut[name] = value[tuple(slice(0, int(extents[axis])) if axis in extents
                                else slice(None) for axis in named)]
    return cut
