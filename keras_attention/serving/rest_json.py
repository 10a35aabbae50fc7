"""The JSON codec of TensorFlow Serving's REST predict API.

The REST server calls these functions so that it accepts the request bodies
TF Serving accepts and answers in TF Serving's JSON shapes. They follow
`tensorflow_serving/util/json_tensor.cc` (`FillPredictRequestFromJson`,
`MakeJsonFromTensors`) and keep its error wording, with the input name, the
row and the position of the offending value added. Pure numpy and stdlib:
nothing here imports TensorFlow.

Requests come in two formats:

* row: `{"signature_name": s, "instances": [...]}`, one list item per row
  (a plain value when the signature has one input, else an object keyed by
  input name); answered with `{"predictions": [...]}`.
* columnar: `{"signature_name": s, "inputs": ...}`, whole tensors (a plain
  value when the signature has one input, else an object keyed by input
  name); answered with `{"outputs": ...}`.

Binary strings travel as `{"b64": "<base64>"}`; string outputs whose name
ends in `_bytes` are answered that way too.

Example:

>>> import numpy as np
>>> from keras_attention.serving.exported_model import TensorInfo
>>> specs = {"serving_default": {"x": TensorInfo(np.dtype("float32"), "DT_FLOAT", (None, 2))}}
>>> request = parse_predict_request(b'{"instances": [[1, 2.5], [3, 4]]}', specs.__getitem__)
>>> request.format, request.num_rows, request.inputs["x"].dtype, request.inputs["x"].shape
('row', 2, dtype('float32'), (2, 2))
>>> outputs = {"y": np.array([0.1, 1.5], np.float32)}   # what the model answered, [B]
>>> dumps(format_predict_response(outputs, request.format))
b'{"predictions":[0.1,1.5]}'
>>> dumps(error_body("Missing 'inputs' or 'instances' key"))
b'{"error":"Missing \\'inputs\\' or \\'instances\\' key"}'
"""

import base64
import binascii
import json
import math
from typing import NamedTuple

import numpy as np

from keras_attention.serving.errors import InvalidArgument
from keras_attention.serving.exported_model import DEFAULT_SIGNATURE

ROW = "row"
COLUMNAR = "columnar"

_SIGNATURE_KEY = "signature_name"
_INSTANCES_KEY = "instances"
_INPUTS_KEY = "inputs"
_BASE64_KEY = "b64"
_BYTES_SUFFIX = "_bytes"

# TF Serving stringifies JSON values in errors up to this many bytes
# (kMaxJsonDebugStringBytes).
_MAX_DEBUG_CHARS = 256
# numpy's limit on dimensions; a deeper nesting cannot become one array.
_MAX_RANK = 64
_JSON_WHITESPACE = " \t\n\r"

_FLOAT_TYPES = {"DT_FLOAT", "DT_DOUBLE", "DT_HALF", "DT_BFLOAT16"}
_INT_TYPES = {"DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64",
              "DT_UINT8", "DT_UINT16", "DT_UINT32", "DT_UINT64"}


class PredictRequest(NamedTuple):
    """A parsed predict request.

    signature_name: the signature to run (`serving_default` when the body
        names none or gives "").
    inputs: input name -> numpy array of the signature's dtype; strings are
        an object array of bytes. Row format: [num_rows, *instance shape].
    format: `"row"` (`instances`) or `"columnar"` (`inputs`); answer with
        the same one.
    num_rows: the batch size, axis 0 (>= 1). Columnar inputs may differ on
        axis 0 as in TF Serving; this is then the largest, and 1 when every
        input is a scalar.
    """

    signature_name: str
    inputs: dict
    format: str
    num_rows: int


# ---------------------------------------------------------------------------
# Requests


class _NumberTooBig(ValueError):
    """A JSON number beyond the double range (rapidjson refuses those)."""


def _parse_json_float(literal):
    value = float(literal)
    if math.isinf(value):  # `Infinity` itself comes through parse_constant
        raise _NumberTooBig(literal)
    return value


_DECODER = json.JSONDecoder(parse_float=_parse_json_float)


def _parse_json(body):
    """The JSON document in `body` (bytes or str), as TF Serving's
    `ParseJson` reads it: a leading UTF-8 BOM is skipped and anything after
    the document is ignored (rapidjson's kParseStopWhenDoneFlag)."""
    if isinstance(body, str):
        text = body
    else:
        body = bytes(body)
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidArgument(
                f"JSON Parse error: Invalid encoding in string. The body is not valid "
                f"UTF-8 (byte 0x{body[error.start]:02x} at offset: {error.start})") from None
    start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
    if start == len(text):
        raise InvalidArgument("JSON Parse error: The document is empty")
    try:
        document, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except _NumberTooBig as error:
        raise InvalidArgument(
            f"JSON Parse error: Number too big to be stored in double: {error}") from None
    except RecursionError:
        raise InvalidArgument("JSON Parse error: the document is nested too deeply "
                              "(over Python's recursion limit)") from None
    return document


def _json_type(value):
    """rapidjson's type name of a JSON value (`JsonTypeString`)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _debug_string(value):
    """A JSON value as compact text for an error message, cut at 256 chars."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep the message valid UTF-8
        text = json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= _MAX_DEBUG_CHARS else text[:_MAX_DEBUG_CHARS] + "..."


def _type_name(spec):
    """TensorFlow's name of the spec's dtype (`DataTypeString`: float, int32...)."""
    tf_dtype = spec.tf_dtype or ""
    return tf_dtype[3:].lower() if tf_dtype.startswith("DT_") else np.dtype(spec.dtype).name


def _shape_string(shape):
    """`[3,2]` as TF Serving prints shapes; -1 for an unknown dimension."""
    if shape is None:
        return "[?]"
    return "[" + ",".join("-1" if d is None else str(d) for d in shape) + "]"


def _dense_shape(value):
    """The shape a JSON value claims, read from the first item at each level
    (TF Serving's `GetDenseTensorShape`); the rest is checked later."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > _MAX_RANK:
            raise _Problem(f"JSON Value: nested over {_MAX_RANK} lists deep; at most "
                           f"{_MAX_RANK} dimensions are supported")
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _is_base64_object(value):
    """`{"b64": "<string>"}` and nothing else (TF Serving's `IsValBase64Object`)."""
    return (isinstance(value, dict) and len(value) == 1
            and isinstance(value.get(_BASE64_KEY), str))


def _is_named_object(value):
    """An object keyed by input names (any object but a b64 one)."""
    return isinstance(value, dict) and not _is_base64_object(value)


def _decode_base64(text):
    """Bytes of base64 `text`. Like absl's `Base64Unescape`: whitespace is
    skipped and the `=` padding may be left out."""
    compact = "".join(text.split())
    if len(compact) % 4:
        compact += "=" * (-len(compact) % 4)
    return base64.b64decode(compact, validate=True)


class _Problem(Exception):
    """A bad value inside one input; `path` is its position in that value."""

    def __init__(self, detail, path=()):
        super().__init__(detail)
        self.detail = detail
        self.path = tuple(path)


class _Converter:
    """Checks and converts the JSON values of one input to its numpy dtype."""

    def __init__(self, spec):
        self.spec = spec
        self.dtype = np.dtype(spec.dtype) if not spec.is_string else np.dtype(object)
        self.type_name = _type_name(spec)
        tf_dtype = spec.tf_dtype
        if spec.is_string:
            self.kind = "string"
        elif tf_dtype == "DT_BOOL":
            self.kind = "bool"
        elif tf_dtype in _INT_TYPES:
            self.kind = "int"
            limits = np.iinfo(self.dtype)
            self.low, self.high = int(limits.min), int(limits.max)
        elif tf_dtype in _FLOAT_TYPES:
            self.kind = "float"
        else:
            self.kind = None

    # -- one value at a time: finds and words the first problem ------------

    def _type_error(self, value, hint=""):
        return (f"JSON Value: {_debug_string(value)} Type: {_json_type(value)} "
                f"is not of expected type: {self.type_name}{hint}")

    def leaf_problem(self, value):
        """Why one leaf (a non-list JSON value) cannot be a value of this
        input, or None."""
        if self.kind is None:
            return (f"Conversion of JSON Value: {_debug_string(value)} to type: "
                    f"{self.type_name} is not supported")
        if isinstance(value, dict):
            if self.kind != "string":
                hint = (" ({\"b64\": ...} carries binary strings, for string inputs only)"
                        if _BASE64_KEY in value else "")
                return self._type_error(value, hint)
            if not _is_base64_object(value):
                return (f"JSON Value: {_debug_string(value)} not formatted correctly for "
                        "base64 data (expected {\"b64\": \"<base64 string>\"})")
            try:
                _decode_base64(value[_BASE64_KEY])
            except (binascii.Error, ValueError) as error:
                return (f"Unable to base64 decode JSON Value: {_debug_string(value)} "
                        f"({error})")
            return None
        if self.kind == "string":
            if not isinstance(value, str):
                return self._type_error(value, " (write numbers as strings, or binary "
                                               "data as {\"b64\": ...})")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                return (f"JSON Value: {_debug_string(value)} is not valid UTF-8 text "
                        f"(a lone surrogate at character {error.start}); send binary "
                        "data as {\"b64\": ...}")
            return None
        if self.kind == "bool":
            return None if type(value) is bool else self._type_error(value)
        if self.kind == "int":
            if type(value) is not int:
                hint = (" (integers are written without a decimal point or exponent)"
                        if type(value) is float and value.is_integer() else "")
                return self._type_error(value, hint)
            if not self.low <= value <= self.high:
                return (f"JSON Value: {_debug_string(value)} Type: Number is out of range for "
                        f"expected type: {self.type_name} ({self.low} to {self.high})")
            return None
        # float: any JSON number; integers become the nearest float as in TF Serving
        if type(value) is int:
            try:
                float(value)
            except OverflowError:
                return f"JSON Value: {_debug_string(value)} Number too big to be stored in double"
            return None
        return None if type(value) is float else self._type_error(value)

    def walk(self, value, shape, level=0, path=()):
        """Raises `_Problem` at the first place `value` does not match the
        dense `shape` or holds a bad leaf (TF Serving's `FillTensorProto`)."""
        rank = len(shape)
        if not isinstance(value, list):
            if level != rank:
                raise _Problem(f"JSON Value: {_debug_string(value)} found at incorrect level: "
                               f"{level + 1} in the JSON DOM. Expected at level: {rank}", path)
            problem = self.leaf_problem(value)
            if problem:
                raise _Problem(problem, path)
            return
        if level >= rank:
            raise _Problem(f"Encountered list at unexpected level: {level} expected < {rank}",
                           path)
        if len(value) != shape[level]:
            raise _Problem(f"Encountered list at unexpected size: {len(value)} at level: "
                           f"{level} expected size: {shape[level]}", path)
        for index, item in enumerate(value):
            self.walk(item, shape, level + 1, path + (index,))

    # -- all values at once: the fast path ---------------------------------

    def convert(self, value):
        """`value` (nested lists) as an array of this input's dtype, or None
        when anything is off (the caller then walks it for the message).
        Vectorised: a 8x32x32x3 frame clip takes milliseconds."""
        if self.kind is None:
            return None
        try:
            shape = _dense_shape(value)
            objects = np.array(value, dtype=object)
            if objects.shape != shape:  # ragged, or a list where a leaf belongs
                return None
            flat = objects.ravel().tolist()
            types = set(map(type, flat))
            if self.kind == "string":
                return self._strings(flat, types, shape)
            if self.kind == "bool":
                return np.array(flat, dtype=bool).reshape(shape) if types <= {bool} else None
            if self.kind == "int":
                if not types <= {int}:
                    return None
                if flat and not (self.low <= min(flat) and max(flat) <= self.high):
                    return None
                return np.array(flat, dtype=self.dtype).reshape(shape)
            if not types <= {int, float}:
                return None
            doubles = np.array(flat, dtype=np.float64)
            with np.errstate(over="ignore"):  # beyond float32: +-inf, as TF Serving
                return doubles.astype(self.dtype).reshape(shape)
        except (ValueError, TypeError, OverflowError, _Problem):
            return None

    def _strings(self, flat, types, shape):
        if not types <= {str, dict}:
            return None
        values = np.empty(len(flat), dtype=object)
        try:
            for index, item in enumerate(flat):
                if type(item) is str:
                    values[index] = item.encode("utf-8")
                elif _is_base64_object(item):
                    values[index] = _decode_base64(item[_BASE64_KEY])
                else:
                    return None
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        return values.reshape(shape)


def _position(path):
    return "".join(f"[{index}]" for index in path)


def _row_shape_problem(instance_shape, spec_shape):
    """Why rows of `instance_shape` do not fit the signature's shape, or None."""
    if spec_shape is None:
        return None
    if len(spec_shape) == 0:
        return ("Expecting a scalar (the signature's shape is []), but 'instances' adds a "
                "batch axis to every input: send this input in columnar 'inputs'")
    expected = spec_shape[1:]
    if len(instance_shape) == len(expected) and all(
            want is None or want == got for want, got in zip(expected, instance_shape)):
        return None
    return (f"Expecting shape {_shape_string(expected)} (the signature's shape "
            f"{_shape_string(spec_shape)} without its batch axis) but got: "
            f"{_shape_string(instance_shape)}")


def _rows_to_array(name, rows, spec):
    """The values of input `name` over all `rows` of `instances`, stacked
    on a new axis 0."""

    def fail(row, detail, path=()):
        where = f" (at position {_position(path)} of the element)" if path else ""
        raise InvalidArgument(f"Failed to process element: {row} key: {name} of 'instances' "
                              f"list. Error: {detail}{where}")

    converter = _Converter(spec)
    if converter.kind is None:
        fail(0, converter.leaf_problem(rows[0]))
    if spec.shape and spec.shape[0] is not None and spec.shape[0] != len(rows):
        raise InvalidArgument(
            f"Input: {name} takes exactly {spec.shape[0]} rows per request (the signature's "
            f"shape is {_shape_string(spec.shape)}), but 'instances' has {len(rows)}")
    array = converter.convert(rows)
    if array is not None:
        problem = _row_shape_problem(array.shape[1:], spec.shape)
        if problem:
            fail(0, problem)
        return array

    # Slow path: find the first bad row, in TF Serving's order and words.
    reference_shape = None
    for row, item in enumerate(rows):
        try:
            shape = _dense_shape(item)
            converter.walk(item, shape)
        except _Problem as problem:
            fail(row, problem.detail, problem.path)
        if reference_shape is None:
            reference_shape = shape
            problem = _row_shape_problem(shape, spec.shape)
            if problem:
                fail(row, problem)
        elif math.prod(shape) != math.prod(reference_shape):
            fail(row, f"Expecting tensor size: {math.prod(reference_shape)} but got: "
                      f"{math.prod(shape)} (rows must all have the shape of element 0, "
                      f"{_shape_string(reference_shape)})")
        elif shape != reference_shape:
            fail(row, f"Expecting shape {_shape_string(reference_shape)} but got: "
                      f"{_shape_string(shape)}")
    fail(0, "could not convert the values to a tensor")


def _column_to_array(name, value, spec):
    """The whole tensor of input `name` from a columnar `inputs` value."""

    def fail(detail, path=()):
        where = f" (at row {path[0]}, position {_position(path)})" if path else ""
        raise InvalidArgument(f"Failed to process input: {name} of 'inputs'. Error: "
                              f"{detail}{where}")

    converter = _Converter(spec)
    if converter.kind is None:
        fail(converter.leaf_problem(value))
    array = converter.convert(value)
    if array is None:
        try:
            converter.walk(value, _dense_shape(value))
        except _Problem as problem:
            fail(problem.detail, problem.path)
        fail("could not convert the values to a tensor")
    if array.ndim >= 1 and array.shape[0] == 0:
        fail("the value has 0 rows (an empty batch); send at least one row")
    if spec.shape is not None and not (
            array.ndim == len(spec.shape)
            and all(want is None or want == got for want, got in zip(spec.shape, array.shape))):
        fail(f"Expecting shape {_shape_string(spec.shape)} (from the signature) but got: "
             f"{_shape_string(array.shape)}")
    return array


def _row_inputs(instances, specs, max_rows, document):
    if not isinstance(instances, list):
        raise InvalidArgument(f"JSON Value: {_debug_string(document)} Expecting "
                              f"'{_INSTANCES_KEY}' to be an list/array")
    if not instances:
        raise InvalidArgument(f"JSON Value: {_debug_string(document)} No values in "
                              f"'{_INSTANCES_KEY}' array (an empty batch); send at least one")
    if max_rows is not None and len(instances) > max_rows:
        raise InvalidArgument(f"'{_INSTANCES_KEY}' has {len(instances)} rows, over this "
                              f"server's limit of {max_rows} rows per request")
    names = list(specs)
    named = _is_named_object(instances[0])
    if not named and len(names) > 1:
        raise InvalidArgument(
            "instances is a plain list, but expecting list of objects as multiple input "
            f"tensors required as per tensorinfo_map (the signature's inputs: "
            f"{', '.join(sorted(names))})")
    if named:
        columns = {name: [] for name in names}
        for row, element in enumerate(instances):
            if not _is_named_object(element):
                raise InvalidArgument(
                    f"Expecting object but got {_json_type(element).lower()} at item {row} of "
                    "input list (the first item is an object keyed by input names, so all are)")
            for key in element:
                if key not in specs:
                    raise InvalidArgument(
                        f"Failed to process element: {row} key: {key} of 'instances' list. "
                        f"Error: JSON object: signature does not have named input: {key} "
                        f"(its inputs: {', '.join(sorted(names))})")
            if len(element) != len(names):
                missing = sorted(set(names) - set(element))
                raise InvalidArgument(
                    f"Failed to process element: {row} of 'instances' list. JSON object: "
                    f"{_debug_string(element)} keys must be equal to: {','.join(sorted(names))}"
                    f" (missing: {', '.join(missing)})")
            for key, value in element.items():
                columns[key].append(value)
    else:
        for row, element in enumerate(instances):
            if _is_named_object(element):
                raise InvalidArgument(
                    f"Expecting value/list but got object at item {row} of input list "
                    "(the first item is a plain value/list, so all are)")
        columns = {names[0]: instances}
    inputs = {name: _rows_to_array(name, columns[name], specs[name]) for name in names}
    return inputs, len(instances)


def _columnar_inputs(value, specs, max_rows):
    names = list(specs)
    if not _is_named_object(value):
        if len(names) > 1:
            raise InvalidArgument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                f"tensors required as per tensorinfo_map (the signature's inputs: "
                f"{', '.join(sorted(names))})")
        columns = {names[0]: value}
    else:
        # Keys that name no input are ignored, as TF Serving does.
        for name in names:
            if name not in value:
                raise InvalidArgument(f"Missing named input: {name} in 'inputs' object.")
        columns = {name: value[name] for name in names}
    inputs = {}
    for name in names:
        column = columns[name]
        if max_rows is not None and isinstance(column, list) and len(column) > max_rows:
            raise InvalidArgument(f"Input: {name} in 'inputs' has {len(column)} rows, over this "
                                  f"server's limit of {max_rows} rows per request")
        inputs[name] = _column_to_array(name, column, specs[name])
    num_rows = max((array.shape[0] for array in inputs.values() if array.ndim), default=1)
    return inputs, num_rows


def parse_predict_request(body, input_specs, max_rows=None):
    """Parses a predict request body into numpy inputs of the signature.

    Args:
        body: The request body, bytes (UTF-8 JSON).
        input_specs: `signature_name -> {input name: TensorInfo}`; raises
            its own error for an unknown signature (not caught here).
        max_rows: Optional limit on the batch size (axis 0).

    Returns:
        A `PredictRequest`. Row format: each input is
        [num_rows, *instance shape]; columnar: each input as sent.

    Raises:
        InvalidArgument: a body TF Serving would refuse, or values that do
            not fit the signature (dtype, range, shape), or over `max_rows`.
            The message names the input, the row and what was expected.
    """
    document = _parse_json(body)
    if not isinstance(document, dict):
        raise InvalidArgument(f"JSON Value: {_debug_string(document)} Is not object (the body "
                              "must be an object such as {\"instances\": [...]})")
    signature_name = document.get(_SIGNATURE_KEY, "")
    if not isinstance(signature_name, str):
        raise InvalidArgument(f"JSON Value: {_debug_string(document)} not formatted correctly. "
                              f"'{_SIGNATURE_KEY}' key must be a string value.")
    signature_name = signature_name or DEFAULT_SIGNATURE
    specs = input_specs(signature_name)
    if not specs:
        raise InvalidArgument(f"Failed to get input map for signature: {signature_name}")

    # Other top-level keys are ignored, as TF Serving does (json_tensor.h).
    has_instances = _INSTANCES_KEY in document
    has_inputs = _INPUTS_KEY in document
    if has_instances and has_inputs:
        raise InvalidArgument(f"JSON Value: {_debug_string(document)} Not formatted correctly "
                              f"expecting only one of '{_INPUTS_KEY}' or '{_INSTANCES_KEY}' "
                              "keys to exist")
    if has_instances:
        inputs, num_rows = _row_inputs(document[_INSTANCES_KEY], specs, max_rows, document)
        request_format = ROW
    elif has_inputs:
        inputs, num_rows = _columnar_inputs(document[_INPUTS_KEY], specs, max_rows)
        request_format = COLUMNAR
    else:
        raise InvalidArgument(f"Missing '{_INPUTS_KEY}' or '{_INSTANCES_KEY}' key")
    return PredictRequest(signature_name, inputs, request_format, int(num_rows))


# ---------------------------------------------------------------------------
# Responses


def _float32_values(array):
    """Nested lists of Python floats that print as TF Serving prints float32
    (`WriteDecimal`): 6 significant digits when those read back as the same
    float32, else 9 (always enough)."""
    singles = array.astype(np.float32).ravel()
    doubles = singles.astype(np.float64)
    values = np.empty_like(doubles)
    # Printing costs about 1 us a value: print 6 digits only where they may do.
    lossy = _six_digits_surely_lossy(singles, doubles)
    maybe = np.flatnonzero(~lossy)
    values[maybe] = _decimal_floats("%.6g", doubles[maybe])
    with np.errstate(over="ignore"):
        differs = (values[maybe].astype(np.float32) != singles[maybe]) & np.isfinite(singles[maybe])
    lossy[maybe[differs]] = True
    nine = np.flatnonzero(lossy)
    values[nine] = _decimal_floats("%.9g", doubles[nine])
    return values.reshape(array.shape).tolist()


def _six_digits_surely_lossy(singles, doubles):
    """[N] bool: where 6 significant digits surely miss the float32 value.

    Rounded in float64 (off by far less than a float32 step), a value more
    than half a float32 step away cannot read back as the same float32.
    Undecided values are printed and checked exactly."""
    magnitude = np.abs(doubles)
    usable = np.isfinite(doubles) & (magnitude > 0)
    exponent = np.floor(np.log10(magnitude, out=np.zeros_like(doubles), where=usable))
    scale = 10.0 ** (5 - exponent)
    rounded = np.round(doubles * scale) / scale
    with np.errstate(over="ignore", invalid="ignore"):  # the step past float32's max is inf
        half_step = 0.5 * np.spacing(np.abs(singles)).astype(np.float64)
        return usable & (np.abs(rounded - doubles) > half_step + 1e-12 * magnitude)


def _decimal_floats(template, doubles):
    """`doubles` printed with a printf `template` and read back, [N] float64."""
    texts = map(template.__mod__, doubles.tolist())
    return np.fromiter(map(float, texts), dtype=np.float64, count=doubles.size)


def _string_values(name, array):
    """Nested lists of text (bytes decoded as UTF-8, bad bytes as U+FFFD), or
    of `{"b64": ...}` objects when `name` ends in `_bytes`."""
    as_base64 = name.endswith(_BYTES_SUFFIX)
    flat = array.ravel().tolist()
    values = np.empty(len(flat), dtype=object)
    for index, item in enumerate(flat):
        if isinstance(item, str):
            item = item.encode("utf-8", "surrogatepass") if as_base64 else item
        elif not isinstance(item, bytes):
            raise InvalidArgument(f"Failed to write JSON value for tensor type: string "
                                  f"(output: {name} holds a {type(item).__name__})")
        if as_base64:
            values[index] = {_BASE64_KEY: base64.b64encode(item).decode("ascii")}
        else:
            values[index] = item if isinstance(item, str) else item.decode("utf-8", "replace")
    return values.reshape(array.shape).tolist()


def tensor_json(name, array):
    """One output tensor as (nested lists of) JSON-able Python values, as
    an answer writes it (float32 in TF Serving's digits; `*_bytes` strings
    as base64 objects)."""
    dtype = array.dtype
    if dtype.kind in "OSU":
        return _string_values(name, array)
    if dtype.kind in "biu":
        return array.tolist()
    if dtype == np.float64:
        return array.tolist()  # repr gives the shortest text that reads back the same
    if dtype.kind == "f" or dtype.name == "bfloat16" or dtype.name.startswith("float8"):
        if dtype.itemsize > 8:  # long double: JSON readers have doubles at most
            return array.astype(np.float64).tolist()
        return _float32_values(array)
    raise InvalidArgument(f"Failed to write JSON value for tensor type: {dtype.name} "
                          f"(output: {name})")


def format_predict_response(outputs, format):
    """The JSON answer to a predict request, as TF Serving's
    `MakeJsonFromTensors` shapes it.

    Args:
        outputs: output name -> numpy array (strings: bytes).
        format: The request's format, `"row"` or `"columnar"`.

    Returns:
        A JSON-able dict (write it with `dumps`):
        row: `{"predictions": [row, ...]}` with one output, each row that
        output's slice on axis 0; with several, each row an object keyed by
        output name. Columnar: `{"outputs": tensor}` with one output,
        `{"outputs": {name: tensor}}` with several.

    Raises:
        InvalidArgument: no outputs, an unknown format, row format with a
            scalar output or outputs of different axis-0 sizes, or a dtype
            JSON cannot carry (complex...).
    """
    if not outputs:
        raise InvalidArgument("Cannot convert empty tensor map to JSON")
    if format not in (ROW, COLUMNAR):
        raise InvalidArgument(f"Invalid request format: {format!r} (expected 'row' or "
                              "'columnar')")
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    if format == COLUMNAR:
        values = {name: tensor_json(name, arrays[name]) for name in names}
        return {"outputs": values[names[0]] if len(names) == 1 else values}

    batch_size = None
    for name in names:
        shape = arrays[name].shape
        if not shape:
            raise InvalidArgument(f"Tensor name: {name} has no shape information (a scalar "
                                  "has no batch axis to split into 'predictions' rows)")
        if batch_size is not None and shape[0] != batch_size:
            raise InvalidArgument(f"Tensor name: {name} has inconsistent batch size: "
                                  f"{shape[0]} expecting: {batch_size}")
        batch_size = shape[0]
    rows = {name: tensor_json(name, arrays[name]) for name in names}
    if len(names) == 1:
        return {"predictions": rows[names[0]]}
    return {"predictions": [{name: rows[name][row] for name in names}
                            for row in range(batch_size)]}


def error_body(message):
    """TF Serving's error answer: `{"error": message}`."""
    return {"error": str(message)}


def _numpy_to_json(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(obj):
    """`obj` as compact UTF-8 JSON bytes. Non-finite floats are written as
    the `NaN`, `Infinity` and `-Infinity` literals, as TF Serving does
    (Python's `json` reads them back)."""
    options = dict(separators=(",", ":"), allow_nan=True, default=_numpy_to_json)
    text = json.dumps(obj, ensure_ascii=False, **options)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (say, echoed in an error): escape it
        return json.dumps(obj, ensure_ascii=True, **options).encode("ascii")
