"""The REST JSON codec against TF Serving's behaviour: its documented examples
(g3doc/api_rest.md) and the cases of `util/json_tensor_test.cc` (named in
comments), round trips, and every error a request can meet."""

import ast
import base64
import json

import numpy as np
import pytest

from keras_attention.serving import rest_json
from keras_attention.serving.errors import InvalidArgument, NotFound
from keras_attention.serving.exported_model import TensorInfo
from keras_attention.serving.rest_json import (
    PredictRequest,
    dumps,
    error_body,
    format_predict_response,
    parse_predict_request,
)

_TF_TYPES = {
    "float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF",
    "int8": "DT_INT8", "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64",
    "uint8": "DT_UINT8", "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64",
    "bool": "DT_BOOL", "complex64": "DT_COMPLEX64",
}


def info(dtype, shape=None):
    """A TensorInfo as `ExportedModel` describes one (shape None: any)."""
    if dtype == "string":
        return TensorInfo(np.dtype(object), "DT_STRING", shape)
    return TensorInfo(np.dtype(dtype), _TF_TYPES[dtype], shape)


def specs_of(**inputs):
    """An `input_specs` callable for one signature; records what it was asked."""

    def input_specs(signature_name):
        input_specs.asked.append(signature_name)
        return inputs

    input_specs.asked = []
    return input_specs


def parse(document, input_specs, max_rows=None):
    body = document if isinstance(document, (bytes, str)) else json.dumps(document)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return parse_predict_request(body, input_specs, max_rows=max_rows)


def assert_array(actual, expected, dtype):
    expected = np.asarray(expected, dtype=dtype)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


def answer(outputs, format):
    """The response as a client reads it."""
    return json.loads(dumps(format_predict_response(outputs, format)))


# ---------------------------------------------------------------------------
# Requests that TF Serving accepts


def test_row_single_unnamed_tensor():
    # json_tensor_test.cc: SingleUnnamedTensor
    input_specs = specs_of(default=info("int32"))
    request = parse({"instances": [[1, 2], [3, 4], [5, 6]]}, input_specs)
    assert isinstance(request, PredictRequest)
    assert request.format == "row" and request.num_rows == 3
    assert request.signature_name == "serving_default"
    assert input_specs.asked == ["serving_default"]
    assert list(request.inputs) == ["default"]
    assert_array(request.inputs["default"], [[1, 2], [3, 4], [5, 6]], np.int32)


@pytest.mark.parametrize("body", [
    b'{"signature_name": "predict_images", "instances": [[1,2]]}',
    # json_tensor_test.cc: TensorFromNonNullTerminatedBuffer reads one document;
    # rapidjson's kParseStopWhenDoneFlag ignores what follows it.
    b'{"signature_name": "predict_images", "instances": [[1,2]]}X',
    # rapidjson's UTF-8 input stream skips a byte order mark.
    b'\xef\xbb\xbf {"signature_name": "predict_images", "instances": [[1,2]]}',
])
def test_row_named_signature(body):
    # json_tensor_test.cc: SingleUnnamedTensorWithSignature
    input_specs = specs_of(default=info("int32"))
    request = parse_predict_request(body, input_specs)
    assert request.signature_name == "predict_images"
    assert input_specs.asked == ["predict_images"]
    assert_array(request.inputs["default"], [[1, 2]], np.int32)


def test_empty_signature_name_means_serving_default():
    input_specs = specs_of(x=info("float32"))
    request = parse({"signature_name": "", "instances": [1.0]}, input_specs)
    assert request.signature_name == "serving_default"
    assert input_specs.asked == ["serving_default"]


def test_float_input_takes_ints_and_floats():
    # json_tensor_test.cc: MixedInputForFloatTensor, MixedInputForDoubleTensor
    request = parse({"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}, specs_of(x=info("float32")))
    assert_array(request.inputs["x"], [1, 2, 3, 4, 5.003, 0.007, 0], np.float32)
    request = parse({"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}, specs_of(x=info("float64")))
    assert_array(request.inputs["x"], [1, 2, 3, 4, 0.662, 0, 0], np.float64)


def test_float_precision_loss_and_overflow_as_tf_serving():
    # json_tensor_test.cc: FloatTensorWithPrecisionLoss
    for literal in (b"1435774380", b"1435774380.0"):
        request = parse(b'{"instances": [' + literal + b"]}", specs_of(x=info("float32")))
        assert request.inputs["x"][0] == np.float32(1435774336)
    # json_tensor_test.cc: FloatTensorThatExceedsMaxReturnsInf, ...MinReturnsZero
    largest, smallest = float(np.finfo(np.float64).max), float(np.finfo(np.float64).tiny)
    body = '{"instances": [%r, %r, %r, %r]}' % (largest, -largest, smallest, -smallest)
    values = parse(body, specs_of(x=info("float32"))).inputs["x"]
    assert values.dtype == np.float32
    assert values[0] == np.inf and values[1] == -np.inf
    assert values[2] == 0 and values[3] == 0 and np.signbit(values[3])


def test_row_base64_strings():
    # json_tensor_test.cc: SingleUnnamedTensorBase64Scalars
    request = parse({"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
                    specs_of(default=info("string")))
    assert_array(request.inputs["default"], [b"hello", b"world"], object)
    assert request.num_rows == 2
    # json_tensor_test.cc: SingleUnnamedTensorBase64Lists
    request = parse({"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]},
                    specs_of(default=info("string")))
    assert_array(request.inputs["default"], [[b"hello"], [b"world"]], object)
    # json_tensor_test.cc: SingleNamedTensorBase64 (an object keyed by the one input)
    request = parse({"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]},
                    specs_of(default=info("string")))
    assert_array(request.inputs["default"], [[[b"hello"], [b"world"]]], object)
    assert request.num_rows == 1


def test_base64_without_padding_or_with_whitespace_decodes():
    # absl::Base64Unescape (TF Serving's decoder) skips whitespace and needs no padding.
    request = parse({"instances": [{"b64": "aGVsbG8"}, {"b64": "d29y\nbGQ="}, {"b64": ""}]},
                    specs_of(x=info("string")))
    assert_array(request.inputs["x"], [b"hello", b"world", b""], object)


def test_strings_are_utf8_bytes():
    # api_rest.md: "instances": [ "foo", "bar", "baz" ] is a list of 3 scalar tensors.
    request = parse({"instances": ["foo", "bar", "baz"]}, specs_of(tag=info("string")))
    assert_array(request.inputs["tag"], [b"foo", b"bar", b"baz"], object)
    request = parse({"inputs": [["Jesús lloró.", "日本"]]},
                    specs_of(text=info("string", (None, 2))))
    assert request.inputs["text"][0, 0] == "Jesús lloró.".encode("utf-8")
    assert request.inputs["text"][0, 1] == "日本".encode("utf-8")


def test_row_multiple_named_tensors():
    # json_tensor_test.cc: MultipleNamedTensor (NaN and Infinity literals included)
    input_specs = specs_of(int_tensor=info("int32"), str_tensor=info("string"),
                           float_tensor=info("float32"), dbl_tensor=info("float64"))
    request = parse(b"""{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"],
         "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"],
         "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}]}""", input_specs)
    assert request.num_rows == 2 and request.format == "row"
    assert_array(request.inputs["int_tensor"],
                 [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)
    assert_array(request.inputs["str_tensor"], [[b"foo", b"bar"], [b"baz", b"bat"]], object)
    assert_array(request.inputs["float_tensor"], [[1, np.nan], [2, np.inf]], np.float32)
    assert_array(request.inputs["dbl_tensor"], [[np.nan], [2]], np.float64)


def test_row_documented_example_with_three_inputs():
    # api_rest.md, row format: two instances of three named inputs.
    input_specs = specs_of(tag=info("string", (None,)), signal=info("int64", (None, 5)),
                           sensor=info("float32", (None, 2, 2)))
    request = parse({"instances": [
        {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
        {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]}, input_specs)
    assert list(request.inputs) == ["tag", "signal", "sensor"]
    assert_array(request.inputs["tag"], [b"foo", b"bar"], object)
    assert_array(request.inputs["signal"], [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]], np.int64)
    assert_array(request.inputs["sensor"], [[[1, 2], [3, 4]], [[4, 5], [6, 8]]], np.float32)


def test_columnar_single_tensor_named_or_plain():
    # json_tensor_test.cc: SingleUnnamedTensorColumnarFormat
    for document in ({"inputs": {"int_tensor": [[[1, 2], [3, 4], [5, 6]]]}},
                     {"inputs": [[[1, 2], [3, 4], [5, 6]]]}):
        request = parse(document, specs_of(int_tensor=info("int32")))
        assert request.format == "columnar" and request.num_rows == 1
        assert_array(request.inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]]], np.int32)


def test_columnar_multiple_named_tensors_and_base64_scalar():
    # json_tensor_test.cc: MultipleNamedTensorColumnarFormat
    input_specs = specs_of(int_tensor=info("int32"), str_tensor=info("string"),
                           bin_tensor=info("string"))
    request = parse({"inputs": {"int_tensor": [[[1, 2], [3, 4], [5, 6]]],
                                "str_tensor": ["foo", "bar"],
                                "bin_tensor": {"b64": "aGVsbG8="}}}, input_specs)
    assert_array(request.inputs["int_tensor"], [[[1, 2], [3, 4], [5, 6]]], np.int32)
    assert_array(request.inputs["str_tensor"], [b"foo", b"bar"], object)
    assert_array(request.inputs["bin_tensor"], b"hello", object)  # a scalar, shape []
    # Columnar inputs need not share axis 0 (api_rest.md); the batch is the largest.
    assert request.num_rows == 2


def test_columnar_documented_example():
    # api_rest.md, columnar representation of the row example.
    input_specs = specs_of(tag=info("string", (None,)), signal=info("int64", (None, 5)),
                           sensor=info("float32", (None, 2, 2)))
    request = parse({"inputs": {"tag": ["foo", "bar"],
                                "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
                                "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]}}, input_specs)
    assert request.num_rows == 2
    assert_array(request.inputs["signal"], [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]], np.int64)


def test_unknown_top_level_keys_and_columnar_keys_are_ignored():
    # json_tensor.h: "Any other keys in the top-level JSON object are ignored";
    # json_tensor_test.cc: DeeplyNestedWellFormed (a nested extra key).
    nested = "[" * 200 + "]" * 200
    body = '{"instances": [1], "nested": %s, "model": "x"}' % nested
    request = parse(body, specs_of(default=info("int32")))
    assert_array(request.inputs["default"], [1], np.int32)
    # FillTensorMapFromInputsMap reads only the signature's names from 'inputs'.
    request = parse({"inputs": {"x": [1.5], "typo": [2]}}, specs_of(x=info("float32")))
    assert list(request.inputs) == ["x"]


def test_integer_ranges_and_bools_convert_exactly():
    cases = [("int8", [-128, 127]), ("int16", [-32768, 32767]), ("uint8", [0, 255]),
             ("int32", [-2**31, 2**31 - 1]), ("int64", [-2**63, 2**63 - 1]),
             ("uint16", [0, 65535]), ("uint32", [0, 2**32 - 1]), ("uint64", [0, 2**64 - 1]),
             ("bool", [True, False])]
    for dtype, values in cases:
        request = parse({"inputs": values}, specs_of(x=info(dtype)))
        assert_array(request.inputs["x"], values, dtype)


def test_uint8_frame_clip_converts_exactly_on_the_vectorised_path(monkeypatch):
    # A 8x32x32x3 clip per row, as the captioning/video exports take. The
    # per-value checks only word errors; a valid clip must never meet them.
    def per_value(*args, **kwargs):
        raise AssertionError("a valid clip was checked value by value")

    monkeypatch.setattr(rest_json._Converter, "walk", per_value)
    monkeypatch.setattr(rest_json._Converter, "leaf_problem", per_value)
    clips = np.random.default_rng(0).integers(0, 256, (2, 8, 32, 32, 3), dtype=np.uint8)
    input_specs = specs_of(frames=info("uint8", (None, 8, 32, 32, 3)))
    for document in ({"instances": clips.tolist()}, {"inputs": clips.tolist()}):
        request = parse(document, input_specs)
        assert_array(request.inputs["frames"], clips, np.uint8)


def test_spec_shape_with_unknown_dims_accepts_any_size():
    input_specs = specs_of(x=info("float32", (None, None, 3)))
    assert parse({"instances": [[[1, 2, 3]] * 4]}, input_specs).inputs["x"].shape == (1, 4, 3)
    assert parse({"inputs": [[[1, 2, 3]]] * 2}, input_specs).inputs["x"].shape == (2, 1, 3)


def test_max_rows_allows_the_limit():
    request = parse({"instances": [1, 2, 3]}, specs_of(x=info("int32")), max_rows=3)
    assert request.num_rows == 3


# ---------------------------------------------------------------------------
# Requests that are refused, each with a message that says why


def refused(document, input_specs, match, max_rows=None):
    with pytest.raises(InvalidArgument, match=match) as caught:
        parse(document, input_specs, max_rows=max_rows)
    assert caught.value.status == 400
    json.loads(dumps(error_body(caught.value.message)))  # answerable as JSON
    return caught.value.message


INT = specs_of(default=info("int32"))


@pytest.mark.parametrize("body, match", [
    # json_tensor_test.cc: SingleUnnamedTensorErrors
    (b"", "JSON Parse error: The document is empty"),
    (b"  \n", "The document is empty"),
    (b'{"instances": [1,', r"JSON Parse error: Expecting value at offset: 17"),
    (b'{"instances": [1]', "JSON Parse error: Expecting ',' delimiter"),
    (b'{"instances": ["\xff"]}', r"not valid UTF-8 \(byte 0xff at offset: 16\)"),
    (b'{"instances": [1e400]}', "Number too big to be stored in double: 1e400"),
    (b"[1, 2]", r"JSON Value: \[1,2\] Is not object"),
    (b'"instances"', "Is not object"),
])
def test_unparseable_bodies(body, match):
    refused(body, INT, match)


def test_nesting_beyond_python_limit_is_refused():
    # json_tensor_test.cc: DeeplyNestedWellFormed accepts 500000 levels
    # (rapidjson parses iteratively); Python's parser stops at its recursion limit.
    body = '{"instances": [1], "nested": ' + "[" * 100000 + "]" * 100000 + "}"
    refused(body, INT, "nested too deeply")


@pytest.mark.parametrize("document, match", [
    # json_tensor_test.cc: SingleUnnamedTensorErrors, DeeplyNestedMalformed
    ({"signature_name": 5, "instances": [[1, 2]]},
     "'signature_name' key must be a string value"),
    ({"signature_name": None, "instances": [[1, 2]]}, "key must be a string value"),
    ({"instances": [[1, 2]], "inputs": [[1, 2]]},
     "Not formatted correctly expecting only one of 'inputs' or 'instances' keys"),
    ({"signature_name": "x"}, "Missing 'inputs' or 'instances' key"),
    ({"instances": {"default": [1]}}, "Expecting 'instances' to be an list/array"),
    ({"instances": []}, r"No values in 'instances' array \(an empty batch\)"),
])
def test_malformed_requests(document, match):
    refused(document, INT, match)


def test_unknown_signature_error_propagates():
    def input_specs(signature_name):
        raise NotFound(f'Serving signature name: "{signature_name}" not found')

    with pytest.raises(NotFound, match='"nope" not found'):
        parse({"signature_name": "nope", "instances": [1]}, input_specs)


def test_signature_without_inputs_is_refused():
    refused({"instances": [1]}, specs_of(), "Failed to get input map for signature: "
                                            "serving_default")


def test_rows_over_max_rows():
    refused({"instances": [1, 2, 3]}, INT, r"'instances' has 3 rows, over this server's "
                                           r"limit of 2 rows per request", max_rows=2)
    refused({"inputs": {"default": [1, 2, 3]}}, INT,
            "Input: default in 'inputs' has 3 rows, over this server's limit of 2", max_rows=2)


def test_columnar_empty_batch():
    refused({"inputs": []}, INT, r"input: default of 'inputs'. Error: the value has 0 rows")
    refused({"inputs": {"default": [], "b": [1]}},
            specs_of(default=info("int32"), b=info("int32")), "default .* 0 rows")


@pytest.mark.parametrize("instances, match", [
    # json_tensor_test.cc: SingleUnnamedTensorErrors
    ([[1, 2], [3, 4], [5, 6, 7]],
     r"element: 2 key: default of 'instances' list. Error: Expecting tensor size: 2 but got: 3"),
    ([[1, 2], [3, 4], [[5, 6]]],
     r"element: 2 key: default .* Expecting shape \[2\] but got: \[1,2\]"),
    ([1, [1]], r"element: 1 .* Expecting shape \[\] but got: \[1\]"),
    ([[1, 2], ["a", "b"]],
     r'element: 1 .* JSON Value: "a" Type: String is not of expected type: int32 '
     r"\(at position \[0\] of the element\)"),
    # Ragged inside one row (FillTensorProto's checks).
    ([[[1, 2], [3]]], r"element: 0 .* Encountered list at unexpected size: 1 at level: 1 "
                      r"expected size: 2 \(at position \[1\]"),
    ([[[1, 2], 3]], r"element: 0 .* JSON Value: 3 found at incorrect level: 2 in the JSON DOM. "
                    r"Expected at level: 2 \(at position \[1\]"),
    ([[1, [2]]], r"Encountered list at unexpected level: 1 expected < 1 \(at position \[1\]"),
])
def test_ragged_or_mistyped_rows(instances, match):
    refused({"instances": instances}, INT, match)


def test_multiple_named_tensor_errors():
    # json_tensor_test.cc: MultipleNamedTensorErrors
    input_specs = specs_of(int_tensor=info("int32"), str_tensor=info("string"))
    refused({"instances": [
        {"int_tensor": [[1, 2], [3, 4], [5, 6]], "str_tensor": ["foo", "bar"]},
        {"int_tensor": [[[7, 8], [9, 0], [1, 2]]], "str_tensor": ["baz", "bat"]}]},
        input_specs, r"element: 1 key: int_tensor .* Expecting shape \[3,2\] but got: \[1,3,2\]")
    refused({"instances": [
        {"int_tensor": [[1, 2], [3, 4], [5, 6], [7, 8]], "str_tensor": ["foo", "bar"]},
        {"int_tensor": [[7, 8], [9, 0], [1, 2]], "str_tensor": ["baz", "bat"]}]},
        input_specs, "element: 1 key: int_tensor .* Expecting tensor size: 8 but got: 6")
    refused({"instances": [
        {"int_tensor": [[1, 2]], "str_tensor": ["foo"]}, [1, 20, 30]]},
        input_specs, "Expecting object but got array at item 1 of input list")
    refused({"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]},
            specs_of(str_tensor=info("string")),
            "Expecting value/list but got object at item 1 of input list")


def test_named_inputs_missing_or_unknown():
    input_specs = specs_of(a=info("int32"), b=info("int32"))
    refused({"instances": [1, 2]}, input_specs,
            r"instances is a plain list, but expecting list of objects .*inputs: a, b")
    refused({"instances": [{"a": 1, "b": 2}, {"a": 1}]}, input_specs,
            r"element: 1 of 'instances' list. JSON object: \{\"a\":1\} keys must be equal "
            r"to: a,b \(missing: b\)")
    refused({"instances": [{"a": 1, "b": 2, "c": 3}]}, input_specs,
            r"element: 0 key: c of 'instances' list. Error: .*does not have named input: c")
    refused({"instances": [{"wrong": 1}]}, specs_of(x=info("int32")),
            "does not have named input: wrong")
    refused({"inputs": [1, 2]}, input_specs,
            "inputs is a plain value/list, but expecting an object")
    refused({"inputs": {"a": [1]}}, input_specs, "Missing named input: b in 'inputs' object.")


@pytest.mark.parametrize("dtype, value, match", [
    ("int32", "7", r'JSON Value: "7" Type: String is not of expected type: int32'),
    ("int32", 2.5, "JSON Value: 2.5 Type: Number is not of expected type: int32"),
    # rapidjson's IsInt() is false for 2.0: TF Serving refuses it too.
    ("int64", 2.0, r"JSON Value: 2.0 Type: Number is not of expected type: int64 "
                   r"\(integers are written without a decimal point"),
    ("uint8", True, "JSON Value: true Type: True is not of expected type: uint8"),
    ("float32", False, "JSON Value: false Type: False is not of expected type: float"),
    ("float32", None, "JSON Value: null Type: Null is not of expected type: float"),
    ("float64", "1.5", r'JSON Value: "1.5" Type: String is not of expected type: double'),
    ("bool", 1, "JSON Value: 1 Type: Number is not of expected type: bool"),
    ("string", 3, "JSON Value: 3 Type: Number is not of expected type: string"),
    ("string", True, "JSON Value: true Type: True is not of expected type: string"),
    ("int32", {"b64": "aGVsbG8="},
     r'JSON Value: \{"b64":"aGVsbG8="\} Type: Object is not of expected type: int32 \(\{"b64"'),
    ("float32", {"x": 1}, r"JSON Value: \{\"x\":1\} Type: Object is not of expected type: float"),
    ("uint8", 300, r"JSON Value: 300 Type: Number is out of range for expected type: uint8 "
                   r"\(0 to 255\)"),
    ("uint8", -1, "JSON Value: -1 Type: Number is out of range for expected type: uint8"),
    ("int8", 128,
     r"JSON Value: 128 Type: Number is out of range for expected type: int8 \(-128 to 127\)"),
    ("int32", 2**31,
     "JSON Value: 2147483648 Type: Number is out of range for expected type: int32"),
    ("int64", 2**63,
     "JSON Value: 9223372036854775808 Type: Number is out of range for expected type: int64"),
    ("uint64", 2**64,
     "JSON Value: 18446744073709551616 Type: Number is out of range for expected type: uint64"),
    ("uint32", -5, "JSON Value: -5 Type: Number is out of range for expected type: uint32"),
    ("float32", 10**400, r"JSON Value: 10+\.\.\. Number too big to be stored in double"),
])
def test_values_of_the_wrong_type_or_range(dtype, value, match):
    input_specs = specs_of(x=info(dtype))
    # Row format: the bad value is in row 1, at position [0] of that row.
    refused({"instances": [[_ok(dtype)], [value]]}, input_specs,
            r"Failed to process element: 1 key: x of 'instances' list. Error: " + match
            + r".* \(at position \[0\] of the element\)$")
    # Columnar: named by input, row and position.
    refused({"inputs": {"x": [[_ok(dtype)], [value]]}}, input_specs,
            r"Failed to process input: x of 'inputs'. Error: " + match
            + r".* \(at row 1, position \[1\]\[0\]\)$")


def test_input_dtype_json_cannot_carry():
    # AddValueToTensor: other dtypes are "Conversion of JSON Value ... to type".
    input_specs = specs_of(x=info("complex64"))
    refused({"instances": [1.0]}, input_specs, r"element: 0 key: x .* Conversion of JSON "
                                               r"Value: 1.0 to type: complex64 is not supported")
    refused({"inputs": [1.0]}, input_specs, "input: x .* to type: complex64 is not supported")


def _ok(dtype):
    return {"string": "fine", "bool": True}.get(dtype, 1)


def test_bad_base64():
    input_specs = specs_of(image=info("string"))
    refused({"instances": [{"b64": "aGVsbG8="}, {"b64": "not base64!"}]}, input_specs,
            r"element: 1 key: image .* Unable to base64 decode JSON Value: "
            r'\{"b64":"not base64!"\}')
    refused({"instances": [{"image": {"b64": "aGVsbG8"}}, {"image": {"b64": "a"}}]},
            input_specs, "element: 1 key: image .* Unable to base64 decode")
    # Objects that are not exactly {"b64": <string>} (IsValBase64Object).
    refused({"instances": [[{"b64": 1}]]}, input_specs,
            r'JSON Value: \{"b64":1\} not formatted correctly for base64 data')
    refused({"inputs": [{"b64": "aGk=", "more": 1}]}, input_specs,
            "not formatted correctly for base64 data")


def test_lone_surrogate_strings_are_refused():
    # JSON can escape half a surrogate pair; it is no UTF-8 text
    # (rapidjson: "The surrogate pair in string is invalid").
    body = b'{"instances": ["fine", "bad \\ud800 text"]}'
    message = refused(body, specs_of(text=info("string")),
                      r"element: 1 key: text .* is not valid UTF-8 text \(a lone surrogate at "
                      r"character 4\)")
    assert "\\ud800" in message  # escaped, so the message stays valid UTF-8
    refused(b'{"inputs": {"text": [["ok", "\\udfff"]]}}', specs_of(text=info("string")),
            r"input: text .* lone surrogate .* \(at row 0, position \[0\]\[1\]\)")


def test_shapes_that_differ_from_the_signature():
    frames = specs_of(frames=info("uint8", (None, 2, 3)))
    refused({"instances": [[[1, 2, 3], [4, 5, 6]], [[1, 2, 3, 4], [4, 5, 6, 7]]]}, frames,
            r"element: 1 key: frames .* Expecting tensor size: 6 but got: 8")
    refused({"instances": [[[1, 2, 3, 4], [4, 5, 6, 7]]]}, frames,
            r"element: 0 key: frames .* Expecting shape \[2,3\] \(the signature's shape "
            r"\[-1,2,3\] without its batch axis\) but got: \[2,4\]")
    refused({"instances": [[1, 2, 3]]}, frames, r"Expecting shape \[2,3\] .* but got: \[3\]")
    refused({"inputs": [[1, 2, 3]]}, frames,
            r"input: frames of 'inputs'. Error: Expecting shape \[-1,2,3\] \(from the "
            r"signature\) but got: \[1,3\]")
    refused({"inputs": {"frames": [[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]}}, frames,
            r"Expecting shape \[-1,2,3\] .* but got: \[1,3,3\]")
    refused({"instances": [1, 2]}, specs_of(x=info("int32", (1,))),
            r"Input: x takes exactly 1 rows per request .*\[1\]\), but 'instances' has 2")
    refused({"instances": [1]}, specs_of(x=info("int32", ())),
            r"Expecting a scalar .* send this input in columnar 'inputs'")


# ---------------------------------------------------------------------------
# Responses


def test_single_tensor_row_and_columnar():
    # json_tensor_test.cc: FromJsonSingleTensor
    tensor = np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)
    assert answer({"int_tensor": tensor}, "row") == {
        "predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]}
    assert answer({"int_tensor": tensor}, "columnar") == {
        "outputs": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]}
    # json_tensor_test.cc: FromJsonSingleScalarTensor
    vector = np.array([1, 2, 3, 4, 5], np.int32)
    assert answer({"int_tensor": vector}, "row") == {"predictions": [1, 2, 3, 4, 5]}
    assert answer({"int_tensor": vector}, "columnar") == {"outputs": [1, 2, 3, 4, 5]}
    # A columnar scalar is the value itself.
    assert answer({"score": np.float32(0.5)}, "columnar") == {"outputs": 0.5}


def test_documented_half_plus_three_answer_is_compact_json():
    # api_rest.md: {"instances": [1.0,2.0,5.0]} -> {"predictions": [3.5, 4.0, 5.5]}
    request = parse({"instances": [1.0, 2.0, 5.0]}, specs_of(x=info("float32")))
    y = request.inputs["x"] * np.float32(0.5) + np.float32(3)
    assert dumps(format_predict_response({"y": y}, request.format)) == \
        b'{"predictions":[3.5,4.0,5.5]}'


def test_bytes_outputs_as_base64():
    # json_tensor_test.cc: FromJsonSingleBytesTensor
    tensor = np.array([[b"hello", b"world"], [b"tf", b"serving"]], object)
    assert answer({"str_tensor_bytes": tensor}, "row") == {"predictions": [
        [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}
    # Without the suffix: text, bad UTF-8 bytes replaced.
    text = np.array([b"Jes\xc3\xbas", b"bad \xff byte"], object)
    assert answer({"text": text}, "row") == {"predictions": ["Jesús", "bad \ufffd byte"]}
    assert dumps(format_predict_response({"text": text[:1]}, "row")) == \
        '{"predictions":["Jesús"]}'.encode("utf-8")  # raw UTF-8, as rapidjson writes
    # The suffix only marks strings; a numeric output keeps its numbers.
    assert answer({"count_bytes": np.array([3], np.int64)}, "row") == {"predictions": [3]}


def test_float32_written_with_six_significant_digits_when_exact():
    # json_tensor_test.cc: FromJsonSingleFloatTensorSixDigitPrecision. The
    # values read back as the short decimals, not float32 noise.
    tensor = np.array([[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], np.float32)
    assert answer({"float_tensor": tensor}, "row") == {
        "predictions": [[9e6, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]]}


def test_float32_written_with_nine_digits_when_six_lose_it():
    # WriteDecimal: "%.*g" with max_digits10 (9) when six digits do not read back.
    third = np.array([1 / 3], np.float32)
    assert dumps(format_predict_response({"p": third}, "row")) == b'{"predictions":[0.333333343]}'


def test_float32_values_read_back_exactly():
    rng = np.random.default_rng(3)
    values = np.concatenate([
        rng.standard_normal(500).astype(np.float32) * np.float32(10) ** rng.integers(-30, 30, 500),
        np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, np.finfo(np.float32).tiny,
                  1e-45, 0.0, -0.0, 1.0, 123456789.0], np.float32)]).astype(np.float32)
    back = np.array(answer({"v": values}, "columnar")["outputs"], np.float32)
    np.testing.assert_array_equal(back, values)
    assert np.signbit(back[-3])  # -0.0 stays negative
    half = np.array([0.1, 65504], np.float16)
    np.testing.assert_array_equal(
        np.array(answer({"h": half}, "columnar")["outputs"], np.float16), half)


def test_float32_text_follows_write_decimal_for_all_kinds_of_values():
    # WriteDecimal's rule, one value at a time: 6 digits if they read back, else 9.
    # The codec skips printing 6 digits where arithmetic shows they cannot do.
    rng = np.random.default_rng(11)
    with np.errstate(over="ignore", invalid="ignore"):  # some are NaN or overflow: dropped
        values = np.concatenate([
            rng.standard_normal(3000).astype(np.float32),
            (rng.integers(-10**6, 10**6, 3000) / 10.0 ** rng.integers(0, 12, 3000)),
            rng.integers(1, 10**6, 3000) * 10.0 ** rng.integers(-44, 39, 3000),
            rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        ]).astype(np.float32)
    values = values[np.isfinite(values)]
    expected = []
    for value in values.astype(np.float64).tolist():
        text = "%.6g" % value
        if np.float32(float(text)) != np.float32(value):
            text = "%.9g" % value
        expected.append(float(text))
    assert answer({"v": values}, "columnar")["outputs"] == expected


def test_non_finite_floats_as_literals():
    # json_tensor_test.cc: FromJsonSingleFloatTensorNonFinite
    tensor = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert dumps(format_predict_response({"float_tensor": tensor}, "row")) == \
        b'{"predictions":[[NaN,Infinity],[3.0,-Infinity]]}'
    doubles = np.array([np.nan, -np.inf, 0.1], np.float64)
    assert dumps(format_predict_response({"d": doubles}, "columnar")) == \
        b'{"outputs":[NaN,-Infinity,0.1]}'


def test_multiple_named_tensors_row_and_columnar():
    # json_tensor_test.cc: FromJsonMultipleNamedTensors
    outputs = {
        "int_tensor": np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32),
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], object),
        "float_tensor": np.array([[1.0], [2.0]], np.float32),
        "double_scalar_tensor": np.array([8.0, 9.0], np.float64),
        "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], object),
    }
    assert answer(outputs, "row") == {"predictions": [
        {"double_scalar_tensor": 8.0, "float_tensor": [1.0],
         "int_tensor": [[1, 2], [3, 4], [5, 6]], "str_tensor": ["foo", "bar"],
         "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
        {"double_scalar_tensor": 9.0, "float_tensor": [2.0],
         "int_tensor": [[7, 8], [9, 0], [1, 2]], "str_tensor": ["baz", "bat"],
         "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]}]}
    assert answer(outputs, "columnar") == {"outputs": {
        "double_scalar_tensor": [8.0, 9.0],
        "float_tensor": [[1.0], [2.0]],
        "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
        "str_tensor": [["foo", "bar"], ["baz", "bat"]],
        "str_tensor_bytes": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
                             [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}}


def test_bools_and_wide_ints_stay_exact():
    outputs = {"flag": np.array([True, False]), "id": np.array([2**64 - 1, 0], np.uint64)}
    assert dumps(format_predict_response(outputs, "row")) == \
        b'{"predictions":[{"flag":true,"id":18446744073709551615},{"flag":false,"id":0}]}'


def test_zero_batch_outputs():
    # json_tensor_test.cc: FromJsonSingleZeroBatchTensor, FromJsonMultipleZeroBatchTensors
    assert answer({"int_tensor": np.zeros((0, 2), np.int32)}, "row") == {"predictions": []}
    assert answer({"str_tensor": np.zeros((0, 1, 2), object),
                   "float_tensor": np.zeros((0, 3, 4), np.float32)}, "row") == {"predictions": []}


def test_response_errors():
    # json_tensor_test.cc: FromJsonSingleTensorErrors
    with pytest.raises(InvalidArgument, match="Cannot convert empty tensor map to JSON"):
        format_predict_response({}, "row")
    with pytest.raises(InvalidArgument, match="Failed to write JSON value for tensor type: "
                                              "complex64"):
        format_predict_response({"tensor": np.array([1, 2], np.complex64)}, "row")
    with pytest.raises(InvalidArgument, match="Tensor name: tensor has no shape information"):
        format_predict_response({"tensor": np.int32(1)}, "row")
    # json_tensor_test.cc: FromJsonMultipleNamedTensorsErrors, ...ZeroBatchTensorsErrors
    with pytest.raises(InvalidArgument, match="Tensor name: str_tensor has inconsistent batch "
                                              "size: 1 expecting: 2"):
        format_predict_response({"int_tensor": np.ones((2, 3), np.int32),
                                 "str_tensor": np.array([[b"foo", b"bar", b"baz"]], object)},
                                "row")
    with pytest.raises(InvalidArgument, match="inconsistent batch size: 1 expecting: 0"):
        format_predict_response({"int_tensor": np.zeros((0, 2), np.int32),
                                 "str_tensor": np.array([[b"foo", b"bar"]], object)}, "row")
    with pytest.raises(InvalidArgument, match="Invalid request format: 'rows'"):
        format_predict_response({"x": np.ones(2)}, "rows")


def test_error_body():
    # json_tensor_test.cc: MakeJsonFromTensors.StatusError
    assert json.loads(dumps(error_body('Bad key: "key"'))) == {"error": 'Bad key: "key"'}
    assert dumps(error_body("Bad key: 'key'")) == b'{"error":"Bad key: \'key\'"}'


def test_round_trips_row_and_columnar():
    specs = specs_of(frames=info("uint8", (None, 2, 2)), weight=info("float32", (None,)),
                     name_bytes=info("string", (None,)), flag=info("bool", (None,)))
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (3, 2, 2), dtype=np.uint8)
    weight = rng.standard_normal(3).astype(np.float32)
    blobs = [bytes(rng.integers(0, 256, 5, dtype=np.uint8)) for _ in range(3)]
    flags = [True, False, True]
    instances = [{"frames": frames[i].tolist(), "weight": float(weight[i]),
                  "name_bytes": {"b64": base64.b64encode(blobs[i]).decode()},
                  "flag": flags[i]} for i in range(3)]
    request = parse({"instances": instances}, specs)
    assert_array(request.inputs["frames"], frames, np.uint8)
    assert_array(request.inputs["weight"], weight, np.float32)
    assert_array(request.inputs["name_bytes"], blobs, object)
    assert_array(request.inputs["flag"], flags, bool)
    # The model echoes its inputs: each row answers what that row sent.
    assert answer(request.inputs, "row")["predictions"] == [
        {**row, "weight": pytest.approx(row["weight"], rel=1e-7)} for row in instances]
    columns = answer(request.inputs, "columnar")["outputs"]
    again = parse({"inputs": columns}, specs)
    assert again.format == "columnar" and again.num_rows == 3
    for name, value in request.inputs.items():
        assert_array(again.inputs[name], value, value.dtype)


def test_dumps_numpy_values_and_lone_surrogates():
    assert dumps({"n": np.int64(3), "a": np.arange(2)}) == b'{"n":3,"a":[0,1]}'
    assert dumps({"error": "bad \ud800"}) == b'{"error":"bad \\ud800"}'


def test_module_does_not_import_tensorflow():
    """Pure numpy and stdlib: the server may run it before TensorFlow loads."""
    with open(rest_json.__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"base64", "binascii", "json", "math", "typing", "numpy",
                        "keras_attention.serving.errors",
                        "keras_attention.serving.exported_model"}
