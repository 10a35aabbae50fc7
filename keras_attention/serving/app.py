"""The REST application: TF Serving's API on Starlette.

Endpoints (paths parsed with TF Serving's own regular expressions, so a
client written against one server works against the other):

- `POST /v1/models/<name>[/versions/<v> | /labels/<l>]:predict`, row
  (`instances`) or columnar (`inputs`) format -> `predictions` / `outputs`;
- `GET  /v1/models/<name>[/versions/<v> | /labels/<l>]` -> version status;
- `GET  /v1/models/<name>[...]/metadata` -> signature defs;
- `GET  /monitoring/prometheus/metrics` -> Prometheus text format;
- `POST /v1/models/<name>[...]:generate_stream`, a `:predict` body of one
  row -> server-sent events: `token` (`{"token", "id", "attention"}`) for
  each output token as it is decoded, then `answer`, the `:predict` answer
  (`error` instead, if decoding fails midway).

Errors answer `{"error": "..."}` with the HTTP status TF Serving gives the
same condition (400 bad input, 404 unknown model or version, 413 a body
over the limit). Model calls run in a bounded thread pool, so requests
run in parallel and the event loop stays free; with batching on,
concurrent requests are merged (`batching.DynamicBatcher`); with continuous
batching on, requests join and leave one running decoding batch at every
step (`continuous_batching.ContinuousBatcher`, which also streams).

Example:

    app = create_app(repository, ServerOptions(enable_batching=True))
    uvicorn.run(app, host="127.0.0.1", port=8501)
"""

import contextlib
import json
import logging
import re
import time
import urllib.parse
from typing import NamedTuple

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from keras_attention.serving import rest_json
from keras_attention.serving.batching import BatchingOptions, DynamicBatcher
from keras_attention.serving.continuous_batching import ContinuousBatcher, ContinuousOptions
from keras_attention.serving.errors import (InvalidArgument, NotFound, PayloadTooLarge,
                                            ServingError)
from keras_attention.serving.explorer import explorer_routes
from keras_attention.serving.exported_model import tf_error_summary

ACCESS_LOG = logging.getLogger("keras_attention.serving.access")

# TF Serving's (http_rest_api_util.cc), case-insensitive as there.
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                          r":(classify|regress|predict|generate_stream)")
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|"
                         r"(?:/labels/([^/:]+)))?(?:\/(metadata))?")
METRICS_PATH = "/monitoring/prometheus/metrics"

# tf.errors codes -> HTTP, as TF Serving's ToHTTPStatusCode.
_HTTP_OF_TF_CODE = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400,
                    10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


class ServerOptions(NamedTuple):
    """What the command line sets (TF Serving's flag names where it has one).

    max_request_bytes: Largest request body; larger ones get 413.
    max_request_rows: Most rows (batch size) in one request.
    num_threads: Model calls that may run at once (`--rest_api_num_threads`).
    enable_batching / batching: merge concurrent requests, and how.
    continuous_batching / continuous: decode `:predict` requests step by
        step in one running batch, and its bound.
    explorer: serve the attention explorer page (`explorer.py`).
    """

    max_request_bytes: int = 32 * 1024 * 1024
    max_request_rows: int = 1024
    num_threads: int = 4
    enable_batching: bool = False
    batching: BatchingOptions = BatchingOptions()
    continuous_batching: bool = False
    continuous: ContinuousOptions = ContinuousOptions()
    explorer: bool = True


class _Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("keras_attention_serving_requests",
                                "Requests answered, by model, API and HTTP status.",
                                ["model", "api", "status"], registry=self.registry)
        self.latency = Histogram("keras_attention_serving_request_latency_seconds",
                                 "Time from request to answer, by model and API.",
                                 ["model", "api"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                          2.5, 5, 10, 30))
        self.batch_rows = Histogram("keras_attention_serving_batch_size",
                                    "Rows in each model call (merged requests count once).",
                                    registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.in_flight = Gauge("keras_attention_serving_requests_in_flight",
                               "Model API requests received and not yet answered.",
                               registry=self.registry)
        self.decoding_steps = Counter("keras_attention_serving_decoding_steps",
                                      "Steps of the running decoding batch (continuous "
                                      "batching and streams).", registry=self.registry)
        self.decoding_rows = Gauge("keras_attention_serving_decoding_rows_in_flight",
                                   "Rows in the running decoding batch.",
                                   registry=self.registry)
        self.steps_per_second = Gauge("keras_attention_serving_decoding_steps_per_second",
                                      "Decoding steps per second over the last 5 seconds.",
                                      registry=self.registry)

    def watch(self, continuous):
        """Reads the running batch's figures at each scrape."""
        self.decoding_rows.set_function(lambda: continuous.rows_in_flight)
        self.steps_per_second.set_function(continuous.steps_per_second)

        def on_step(rows):
            self.decoding_steps.inc()
            self.batch_rows.observe(rows)

        continuous.on_step = on_step


def create_app(repository, options=ServerOptions()):
    """A Starlette app serving `repository` (a started `ModelRepository`)."""
    metrics = _Metrics()
    state = {}

    async def run_in_thread(function, *args):
        return await anyio.to_thread.run_sync(function, *args, limiter=state["limiter"])

    batcher = DynamicBatcher(options.batching, run_in_thread, options.num_threads)
    batcher.on_batch = metrics.batch_rows.observe
    continuous = ContinuousBatcher(options.continuous, run_in_thread)
    metrics.watch(continuous)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["limiter"] = anyio.CapacityLimiter(options.num_threads)
        yield
        repository.stop()  # after uvicorn has let in-flight requests finish

    async def models_endpoint(request):
        with metrics.in_flight.track_inprogress():
            return await _models_answer(request)

    async def _models_answer(request):
        started = time.perf_counter()
        model_name, api = "", "unknown"
        try:
            # Matched undecoded, then each part decoded, as TF Serving does:
            # a name never spans a "/" however it is escaped.
            path = request.scope.get("raw_path", b"").decode("latin-1").split("?")[0] \
                or request.url.path
            if request.method == "POST":
                match = PREDICT_PATH.fullmatch(path)
                if match is None:
                    raise InvalidArgument(f"Malformed request: POST {path}")
                model_name, version, label, api = _decoded(match.groups())
                api = api.lower()
                if api not in ("predict", "generate_stream"):
                    raise ServingError(f"{api} is not served here: only predict and "
                                       "generate_stream (these models take tensors, not "
                                       "tf.Example)")
                body = await _read_body(request, options.max_request_bytes)
                served = repository.get(model_name, _int(version), label)
                if api == "generate_stream":
                    stream = await _stream(served, body, started)
                    request.state.model, request.state.api = model_name, api
                    metrics.requests.labels(model_name, api, "200").inc()
                    return stream
                answer = await _predict(served, body)
            else:
                match = STATUS_PATH.fullmatch(path)
                if match is None:
                    raise InvalidArgument(f"Malformed request: GET {path}")
                model_name, version, label, subresource = _decoded(match.groups())
                if not model_name:
                    raise InvalidArgument("Missing model name in request.")
                api = "metadata" if subresource else "status"
                answer = _metadata(repository.get(model_name, _int(version), label)) \
                    if subresource else _status(repository, model_name, _int(version), label)
            status = 200
        except ServingError as error:
            status, answer = error.status, rest_json.error_body(error.message)
        except ClientDisconnect:
            status, answer = 499, rest_json.error_body("client closed the request")
        seconds = time.perf_counter() - started
        metrics.requests.labels(model_name or "", api, str(status)).inc()
        metrics.latency.labels(model_name or "", api).observe(seconds)
        request.state.model, request.state.api = model_name or "", api
        return Response(rest_json.dumps(answer), status_code=status,
                        media_type="application/json")

    def _parsed(served, body):
        """`(model, PredictRequest, signature name)` of a `:predict` body."""
        model = served.model
        if model is None:
            raise NotFound(f"Servable not found for request: Specific({served.name}, "
                           f"{served.version})")

        def input_specs(signature_name):
            try:
                return model.signature(signature_name or None).inputs
            except KeyError as error:
                raise InvalidArgument(str(error.args[0])) from None

        request = rest_json.parse_predict_request(body, input_specs,
                                                  max_rows=options.max_request_rows)
        return model, request, model.signature(request.signature_name or None).name

    async def _predict(served, body):
        model, request, signature = _parsed(served, body)
        try:
            if options.continuous_batching and continuous.serves(model, signature):
                outputs = await continuous.predict(model, signature, request.inputs,
                                                   request.num_rows)
            elif options.enable_batching:
                outputs = await batcher.predict(model, signature, request.inputs,
                                                request.num_rows)
            else:
                metrics.batch_rows.observe(request.num_rows)
                outputs = await run_in_thread(model.predict, signature, request.inputs)
        except Exception as error:
            raise _model_error(error) from error
        return rest_json.format_predict_response(outputs, request.format)

    async def _stream(served, body, started):
        """The `:generate_stream` answer: checked, and its first event
        decoded, before the 200 goes out, so a bad request gets its status.
        Its latency runs to the last event."""
        model, request, signature = _parsed(served, body)
        if request.num_rows != 1:
            raise InvalidArgument(f"generate_stream takes one input row; this request has "
                                  f"{request.num_rows}")
        if not continuous.serves(model, signature):
            raise InvalidArgument(f"{signature}: cannot be decoded step by step (the greedy "
                                  "signatures of exports with step-level signatures stream)")
        events = continuous.stream(model, signature, request.inputs)
        try:
            first = await events.__anext__()
        except Exception as error:
            events.close()
            raise _model_error(error) from error

        async def server_sent_events():
            event = first
            try:
                while True:
                    if "outputs" in event:
                        answer = rest_json.format_predict_response(event["outputs"],
                                                                   request.format)
                        yield _event("answer", answer)
                        return
                    yield _event("token", {
                        "token": event["token"], "id": event["id"],
                        "attention": rest_json.tensor_json("attention", event["attention"])})
                    event = await events.__anext__()
            except Exception as error:  # after the 200: the stream says it
                yield _event("error", rest_json.error_body(_model_error(error).message))
            finally:
                events.close()  # a client gone: its row leaves at the next step
                metrics.latency.labels(served.name, "generate_stream").observe(
                    time.perf_counter() - started)

        return StreamingResponse(server_sent_events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def metrics_endpoint(request):
        request.state.model, request.state.api = "", "metrics"
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [Route(METRICS_PATH, metrics_endpoint, methods=["GET"]),
              Route("/v1/{rest:path}", models_endpoint, methods=["GET", "POST"]),
              Route("/v1", models_endpoint, methods=["GET", "POST"])]
    if options.explorer:
        routes += explorer_routes(repository)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics, app.state.batcher, app.state.repository = metrics, batcher, repository
    app.state.continuous = continuous
    return AccessLog(app)


class AccessLog:
    """ASGI middleware: one JSON line per request on the
    `keras_attention.serving.access` logger (time, client, method, path,
    status, bytes in and out, milliseconds, model)."""

    def __init__(self, app):
        self.app = app
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        record = {"status": 500, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive():
            message = await receive()
            record["bytes_in"] += len(message.get("body", b""))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            elif message["type"] == "http.response.body":
                record["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            state = scope.get("state", {})
            client = scope.get("client") or ("", 0)
            ACCESS_LOG.info(json.dumps({
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "client": f"{client[0]}",
                "method": scope["method"], "path": scope["path"], "status": record["status"],
                "bytes_in": record["bytes_in"], "bytes_out": record["bytes_out"],
                "ms": round(1000 * (time.perf_counter() - started), 2),
                "model": state.get("model", ""), "api": state.get("api", "")}))


def _event(name, data):
    """One server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + rest_json.dumps(data) + b"\n\n"


async def _read_body(request, limit):
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(parts):
    return [None if part is None else urllib.parse.unquote(part) for part in parts]


def _int(text):
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"Failed to convert version: {text} to numeric.") from None


def _model_error(error):
    """A model call's exception as a `ServingError` with TF Serving's status."""
    if isinstance(error, ServingError):
        return error
    code = getattr(error, "error_code", None)
    wrapped = ServingError(tf_error_summary(error))
    wrapped.status = _HTTP_OF_TF_CODE.get(code, 500)
    return wrapped


def _status(repository, name, version, label):
    """GetModelStatusResponse as TF Serving writes it (its own proto)."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_status_pb2

    if label is not None:
        version = repository.get(name, None, label).version
    response = get_model_status_pb2.GetModelStatusResponse()
    for served in repository.states(name, version):
        entry = response.model_version_status.add()
        entry.version = served.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(served.state)
        entry.status.error_code = 2 if served.error else 0  # UNKNOWN / OK
        entry.status.error_message = served.error
    return json_format.MessageToDict(response, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def _metadata(served):
    """GetModelMetadataResponse as TF Serving writes it: `model_spec` and
    `metadata.signature_def`, the SavedModel's SignatureDefMap."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

    if served.model is None:
        raise NotFound(f"Servable not found for request: Specific({served.name}, "
                       f"{served.version})")
    spec = model_pb2.ModelSpec(name=served.name, signature_name="")
    spec.version.value = served.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in served.model.signature_defs().items():
        signature_map.signature_def[key].CopyFrom(signature_def)

    def as_dict(message):
        return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                         preserving_proto_field_name=True)

    return {"model_spec": as_dict(spec), "metadata": {"signature_def": as_dict(signature_map)}}
