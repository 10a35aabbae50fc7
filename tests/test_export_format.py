"""`keras_attention.export_format`: reading an export's metadata.json, with
errors that name the file; the names the exporter, server and CLI share."""

import json
import os

import pytest

from keras_attention import export_format


def _write(version_dir, text):
    os.makedirs(version_dir / "assets.extra", exist_ok=True)
    path = version_dir / export_format.METADATA_PATH
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_metadata_round_trip(tmp_path):
    metadata = {"format_version": export_format.METADATA_FORMAT, "task": "translation",
                "signatures": {export_format.BEAM_SIGNATURE: {"beam_width": 3}}}
    _write(tmp_path, json.dumps(metadata))
    assert export_format.read_metadata(str(tmp_path)) == metadata
    assert export_format.signature_metadata(metadata, "beam_search") == {"beam_width": 3}
    assert export_format.signature_metadata(metadata, "serving_default") == {}


def test_missing_metadata_raises_unless_allowed(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        export_format.read_metadata(str(tmp_path))
    assert export_format.read_metadata(str(tmp_path), missing_ok=True) == {}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON object expected, found list"),
    ('{"format_version": 99}', r"format_version 99 is newer than this package reads \(1\)"),
    ('{"format_version": "1"}', "format_version must be an integer, found '1'"),
])
def test_bad_metadata_is_refused_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError, match=message) as raised:
        export_format.read_metadata(str(tmp_path))
    assert str(raised.value).startswith(f"{path}: ")


def test_the_exporter_and_the_server_read_the_same_format():
    from keras_attention.cli import COMMANDS
    from keras_attention.serving import exported_model
    from training.core import export

    assert export.GREEDY_SIGNATURE == exported_model.DEFAULT_SIGNATURE == "serving_default"
    assert export.METADATA_PATH == os.path.join("assets.extra", "metadata.json")
    assert export.read_metadata is export_format.read_metadata
    for name in ("translate", "caption"):  # video reads GIFs: its own pair
        assert (COMMANDS[name].greedy_signature, COMMANDS[name].beam_signature) == (
            export_format.GREEDY_SIGNATURE, export_format.BEAM_SIGNATURE)


def test_cut_to_extents_slices_each_named_axis_and_nothing_else(rng):
    import numpy as np

    attention = rng.normal(size=(3, 7, 5))
    tokens = rng.integers(0, 9, (3, 7))
    values = {"attention": attention, "tokens": tokens, "length": np.array([4, 2, 6]),
              "text": b"unnamed axes", "extra": rng.normal(size=(3, 7))}
    axes = {"attention": ["batch", "output_token", "source_token"],
            "tokens": ["batch", "output_token"], "length": ["batch"], "text": []}
    cut = export_format.cut_to_extents(values, axes, {"output_token": 6, "source_token": 2})
    np.testing.assert_array_equal(cut["attention"], attention[:, :6, :2])
    np.testing.assert_array_equal(cut["tokens"], tokens[:, :6])
    np.testing.assert_array_equal(cut["length"], [4, 2, 6])
    assert cut["text"] == b"unnamed axes"
    np.testing.assert_array_equal(cut["extra"], values["extra"])  # no axes entry: whole
    assert values["attention"].shape == (3, 7, 5)  # the inputs are left as they were
