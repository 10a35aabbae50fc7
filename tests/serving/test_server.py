"""The REST server over real HTTP on loopback: TF Serving's endpoints and
JSON shapes, both request formats, binary inputs, bad requests, versions
appearing while serving, concurrency with and without dynamic batching,
and SIGTERM with requests in flight.

The reference for every answer is the same SavedModel called in this
process (`ExportedModel.predict`), converted to JSON by the test itself."""

import base64
import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import time

import numpy as np
import pytest

from server_process import imported_packages, running_server
from serving_exports import png_bytes

pytestmark = pytest.mark.slow

SENTENCES = ["the dog runs", "a red cat sees the green dog .", "", "cat", "the the the",
             "green dog sees a cat", "runs .", "a cat"]


def reference(model_dir, signature, values, input_name):
    """The in-process answer, one request: name -> nested lists (strings decoded)."""
    from keras_attention.serving.exported_model import ExportedModel

    if model_dir not in _models:  # load once (setdefault would load on every call)
        _models[model_dir] = ExportedModel(model_dir)
    model = _models[model_dir]
    array = np.array([v if isinstance(v, bytes) else v.encode() for v in values], object)
    outputs = model.predict(signature, {input_name: array})
    return {name: _plain(value) for name, value in outputs.items()}


_models = {}


def _plain(value):
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value).tolist() \
            if value.size else value.tolist()
    return value.tolist()


def assert_same(answer, expected, where=""):
    """Strings and ints exactly; floats to 1e-5 (a batch's size may change
    the last bits of a float32 matmul)."""
    if isinstance(expected, dict):
        assert isinstance(answer, dict) and set(answer) == set(expected), where
        for key in expected:
            assert_same(answer[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(answer, list) and len(answer) == len(expected), where
        for index, (a, e) in enumerate(zip(answer, expected)):
            assert_same(a, e, f"{where}[{index}]")
    elif isinstance(expected, float):
        assert answer == pytest.approx(expected, abs=1e-5), where
    else:
        assert answer == expected, where


def rows_of(columns):
    """Columnar outputs -> the row format's list of objects."""
    count = len(next(iter(columns.values())))
    return [{name: value[i] for name, value in columns.items()} for i in range(count)]


def wait_for(condition, seconds=60):
    """Polls `condition()` until it is true (-> True) or `seconds` pass (-> False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def log_lines(path):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="module")
def server(export_base, translator_dir, captioner_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("server")
    config = folder / "models.config"
    config.write_text(f"""
model_config_list {{
  config {{ name: "translator" base_path: "{translator_dir}" model_platform: "tensorflow"
           version_labels {{ key: "stable" value: 1 }} }}
  config {{ name: "captioner" base_path: "{captioner_dir}" }}
}}""")
    log_path = str(folder / "access.log")
    # Its stderr lists every module it imports (test_tensorflow_runs_without_keras).
    with running_server("--model_config_file", str(config), "--max_request_bytes", "200000",
                        "--max_request_rows", "64", "--access_log", log_path,
                        log_path=str(folder / "server.log"),
                        environment={"PYTHONPROFILEIMPORTTIME": "1"}) as (client, _):
        yield client, log_path


def test_tensorflow_runs_without_keras(server):
    """The server imports TensorFlow without the Keras it would load behind
    it (`keras_attention.tensorflow_alone`), and serves the exports."""
    client, access_log = server
    status, _ = client.post("/v1/models/translator:predict", {"instances": ["the red dog"]})
    assert status == 200
    with open(os.path.join(os.path.dirname(access_log), "server.log"), encoding="utf-8",
              errors="replace") as log:
        packages = imported_packages(log.read())
    assert {"tensorflow", "uvicorn", "keras_attention"} <= packages
    assert "keras" not in packages


# ---------------------------------------------------------------- status, metadata
def test_status_of_a_model_and_of_a_version(server):
    client, _ = server
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]}
    assert client.get("/v1/models/translator") == (200, expected)
    assert client.get("/v1/models/translator/versions/1") == (200, expected)
    assert client.get("/v1/models/translator/labels/stable") == (200, expected)
    status, answer = client.get("/v1/models/translator/versions/7")
    assert status == 404 and "version 7" in answer["error"]
    status, answer = client.get("/v1/models/nobody")
    assert status == 404 and "nobody" in answer["error"]
    assert client.get("/v1/models")[0] == 400


def test_metadata_lists_the_savedmodels_signatures(server, translator_dir):
    import tensorflow as tf
    from tensorflow.core.framework.types_pb2 import DataType

    client, _ = server
    status, answer = client.get("/v1/models/translator/metadata")
    assert status == 200
    assert answer["model_spec"] == {"name": "translator", "signature_name": "",
                                    "version": "1"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    loaded = tf.saved_model.load(os.path.join(translator_dir, "1"))
    for key, function in loaded.signatures.items():
        described = signatures[key]
        assert described["method_name"] == "tensorflow/serving/predict"
        for name, spec in function.structured_input_signature[1].items():
            assert described["inputs"][name]["dtype"] == DataType.Name(spec.dtype.as_datatype_enum)
            assert [int(d["size"]) for d in described["inputs"][name]["tensor_shape"]["dim"]] \
                == [-1 if d is None else d for d in spec.shape]
        assert set(described["outputs"]) == set(function.structured_outputs)


# ---------------------------------------------------------------------- predict
def test_row_format_equals_the_in_process_answer(server, translator_dir):
    client, _ = server
    status, answer = client.post("/v1/models/translator:predict", {"instances": SENTENCES[:4]})
    assert status == 200, answer
    expected = reference(translator_dir, "serving_default", SENTENCES[:4], "source_text")
    assert_same(answer["predictions"], rows_of(expected))


def test_columnar_format_and_named_instances(server, translator_dir):
    client, _ = server
    expected = reference(translator_dir, "beam_search", SENTENCES[1:3], "source_text")
    for body in ({"signature_name": "beam_search", "inputs": {"source_text": SENTENCES[1:3]}},
                 {"signature_name": "beam_search", "inputs": SENTENCES[1:3]}):
        status, answer = client.post("/v1/models/translator/versions/1:predict", body)
        assert status == 200, answer
        assert_same(answer["outputs"], expected)
    status, answer = client.post("/v1/models/translator/labels/stable:predict",
                                 {"signature_name": "beam_search",
                                  "instances": [{"source_text": s} for s in SENTENCES[1:3]]})
    assert status == 200
    assert_same(answer["predictions"], rows_of(expected))


def test_a_greedy_search_over_the_step_signatures(server, translator_dir):
    """A client decodes through `encode` and `decode_step` over REST (state
    and constants sent back each step, columnar JSON) and gets the greedy
    signature's token ids; the empty row (`empty`) gets none."""
    from keras_attention.export_format import read_metadata

    client, _ = server
    step = read_metadata(f"{translator_dir}/1")["step_signatures"]["decode_step"]
    status, answer = client.post("/v1/models/translator:predict",
                                 {"signature_name": "encode", "inputs": SENTENCES[:4]})
    assert status == 200, answer
    carried = answer["outputs"]
    tokens = [step["start_token"]] * 4
    ids, finished = [[] for _ in tokens], [False] * 4
    for _ in range(max(carried["row_limits"])):
        inputs = {name: carried[name] for name in step["state"] + step["constants"]}
        status, out = client.post("/v1/models/translator:predict",
                                  {"signature_name": "decode_step",
                                   "inputs": {"tokens": tokens, **inputs}})
        assert status == 200, out
        out = out["outputs"]
        carried.update({name: out[name] for name in step["state"]})
        tokens = [int(np.argmax(row)) for row in out["log_probs"]]
        for row, token in enumerate(tokens):
            finished[row] = finished[row] or token == step["end_token"]
            if not finished[row]:
                ids[row].append(token)
        if all(finished):
            break
    ids = [[] if empty else row for row, empty in zip(ids, carried["empty"])]  # ""
    expected = reference(translator_dir, "serving_default", SENTENCES[:4], "source_text")
    want = [row[:length] for row, length in zip(expected["token_ids"], expected["length"])]
    assert ids == want and any(want)


def test_images_as_base64_in_both_formats(server, captioner_dir):
    client, _ = server
    images = [png_bytes(1), png_bytes(2, size=(40, 17))]
    encoded = [{"b64": base64.b64encode(i).decode()} for i in images]
    expected = reference(captioner_dir, "serving_default", images, "image_bytes")
    status, answer = client.post("/v1/models/captioner:predict", {"instances": encoded})
    assert status == 200, answer
    assert_same(answer["predictions"], rows_of(expected))
    status, answer = client.post("/v1/models/captioner:predict",
                                 {"inputs": {"image_bytes": encoded}})
    assert status == 200
    assert_same(answer["outputs"], expected)


# ----------------------------------------------------------------- bad requests
BAD_REQUESTS = [
    ("/v1/models/translator:predict", b"{not json", 400, "JSON"),
    ("/v1/models/translator:predict", b"\xff\xfe{}", 400, ""),
    ("/v1/models/translator:predict", b"[1, 2]", 400, "object"),
    ("/v1/models/translator:predict", {"instances": ["a"], "inputs": ["a"]}, 400, ""),
    ("/v1/models/translator:predict", {"signature_name": "serving_default"}, 400,
     "instances"),
    ("/v1/models/translator:predict", {"instances": []}, 400, ""),
    ("/v1/models/translator:predict", {"instances": [3]}, 400, ""),
    ("/v1/models/translator:predict", {"instances": [["a", "b"]]}, 400, ""),
    ("/v1/models/translator:predict", {"inputs": {"wrong_name": ["a"]}}, 400, ""),
    ("/v1/models/translator:predict", {"instances": ["\ud800"]}, 400, ""),
    ("/v1/models/translator:predict", {"instances": ["a"] * 65}, 400, "64"),
    ("/v1/models/translator:predict", {"signature_name": "nope", "instances": ["a"]}, 400,
     "nope"),
    ("/v1/models/nobody:predict", {"instances": ["a"]}, 404, "nobody"),
    ("/v1/models/translator/versions/9:predict", {"instances": ["a"]}, 404, "9"),
    ("/v1/models/translator/labels/canary:predict", {"instances": ["a"]}, 404, "canary"),
    ("/v1/models/..%2Ftranslator:predict", {"instances": ["a"]}, 404, ""),
    ("/v1/models/translator:classify", {"examples": []}, 500, "predict"),
    ("/v1/models/captioner:predict", {"instances": [{"b64": "bm90IGFuIGltYWdl"}]}, 400,
     "image"),
    ("/v1/models/captioner:predict", {"instances": [{"b64": "%%%"}]}, 400, "base64"),
    ("/v1/models/translator:predict", {"instances": ["a " * 120000]}, 413, "limit"),
]


@pytest.mark.parametrize("path,body,status,words", BAD_REQUESTS,
                         ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_requests_get_clear_errors_and_the_server_lives(server, path, body, status, words):
    client, _ = server
    if isinstance(body, str):
        body = body.encode()
    if isinstance(body, dict) and any("\ud800" in str(v) for v in body.get("instances", [])):
        body = json.dumps(body).encode()  # json.dumps escapes the lone surrogate as \\ud800
    answer_status, answer = client.post(path, body)
    assert answer_status == status, answer
    assert set(answer) == {"error"} and answer["error"]
    assert words.lower() in answer["error"].lower()
    assert client.get("/v1/models/translator")[0] == 200


def test_metrics_and_the_access_log(server):
    client, log_path = server
    client.post("/v1/models/translator:predict", {"instances": ["a cat"]})
    client.post("/v1/models/nobody:predict", {"instances": ["a cat"]})
    status, text = client.get("/monitoring/prometheus/metrics", raw=True)
    text = text.decode()
    assert status == 200
    assert re.search(r'keras_attention_serving_requests_total\{api="predict",'
                     r'model="translator",status="200"\} [1-9]', text)
    assert re.search(r'keras_attention_serving_requests_total\{api="predict",'
                     r'model="nobody",status="404"\} [1-9]', text)
    assert "keras_attention_serving_batch_size_bucket" in text
    assert "keras_attention_serving_requests_in_flight 0.0" in text  # none left open

    def entries():
        return [json.loads(line) for line in log_lines(log_path) if line.strip()]

    # A request's line is written once its answer has been sent, so it may lag the answer.
    assert wait_for(lambda: any(e["path"] == "/v1/models/nobody:predict"
                                and e["status"] == 404 for e in entries()), 30)
    assert all({"time", "method", "status", "ms", "bytes_in", "bytes_out"} <= set(e)
               for e in entries())


def test_binds_to_loopback_unless_told():
    from keras_attention.serving.server import parse_args

    assert parse_args(["--model_base_path", "x"]).host == "127.0.0.1"
    with pytest.raises(SystemExit):
        parse_args([])  # neither a base path nor a config file


def test_steps_per_call_is_a_positive_count(capsys):
    from keras_attention.serving.server import parse_args

    args = parse_args(["--model_base_path", "x", "--continuous_batching", "--steps_per_call", "8"])
    assert (args.continuous_batching, args.steps_per_call) == (True, 8)
    assert parse_args(["--model_base_path", "x"]).steps_per_call == 4
    with pytest.raises(SystemExit):
        parse_args(["--model_base_path", "x", "--steps_per_call", "0"])
    assert "--steps_per_call must be at least 1" in capsys.readouterr().err


# --------------------------------------------------------- versions while serving
def _copy_version(source_dir, target_dir, only=None):
    os.makedirs(target_dir)
    for name in os.listdir(source_dir):
        if only is not None and name not in only:
            continue
        source, target = os.path.join(source_dir, name), os.path.join(target_dir, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, target)


def test_a_new_version_is_served_and_a_half_copied_one_never(translator_dir, captioner_dir,
                                                             tmp_path):
    base = tmp_path / "models"
    _copy_version(os.path.join(translator_dir, "1"), str(base / "1"))
    with running_server("--model_name", "m", "--model_base_path", str(base),
                        "--file_system_poll_wait_seconds", "0.2") as (client, _):
        assert client.get("/v1/models/m")[1]["model_version_status"][0]["version"] == "1"
        # Version 2 (the captioner, so answers tell which is served) arrives in pieces.
        _copy_version(os.path.join(captioner_dir, "1"), str(base / "2"),
                      only={"saved_model.pb"})

        def version_2():
            status, answer = client.get("/v1/models/m/versions/2")
            return answer["model_version_status"][0] if status == 200 else None

        # Once settled, the half copy is tried, fails, and is kept as a failed version.
        assert wait_for(lambda: (version_2() or {}).get("state") == "END")
        assert version_2()["status"]["error_code"] == "UNKNOWN"
        assert version_2()["status"]["error_message"]
        status, answer = client.post("/v1/models/m:predict", {"instances": ["a cat"]})
        assert status == 200 and "source_tokens" in answer["predictions"][0]
        for name in os.listdir(os.path.join(captioner_dir, "1")):
            source = os.path.join(captioner_dir, "1", name)
            if name != "saved_model.pb":
                (shutil.copytree if os.path.isdir(source) else shutil.copy2)(
                    source, str(base / "2" / name))
        assert wait_for(lambda: client.get("/v1/models/m/versions/2")[0] == 200 and
                         client.get("/v1/models/m/versions/2")[1]["model_version_status"][0]
                         ["state"] == "AVAILABLE")
        image = {"b64": base64.b64encode(png_bytes(3)).decode()}
        status, answer = client.post("/v1/models/m:predict", {"instances": [image]})
        assert status == 200 and "source_tokens" not in answer["predictions"][0]
        # The latest policy serves one version: 1 is unloaded.
        assert wait_for(lambda: client.get("/v1/models/m/versions/1")[1]
                         ["model_version_status"][0]["state"] == "END")
        assert client.post("/v1/models/m/versions/1:predict",
                           {"instances": ["a cat"]})[0] == 404


# ------------------------------------------------------------------ concurrency
def _hammer(client, requests, threads=8, seconds=240):
    """Sends `(path, body)` requests from `threads` client threads."""
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(client.post, path, body) for path, body in requests]
        return [f.result(timeout=seconds) for f in futures]


def _mixed_requests():
    requests = []
    for i in range(24):
        rows = SENTENCES[i % 5: i % 5 + 1 + i % 3]
        signature = "beam_search" if i % 4 == 3 else "serving_default"
        requests.append(("/v1/models/translator:predict",
                         {"signature_name": signature, "instances": rows}))
    return requests


@pytest.mark.parametrize("batching", [False, True], ids=["plain", "batching"])
def test_concurrent_answers_equal_in_process_answers(translator_dir, batching):
    args = ["--model_name", "translator", "--model_base_path", translator_dir,
            "--rest_api_num_threads", "4"]
    if batching:
        args += ["--enable_batching", "--max_batch_size", "16",
                 "--batch_timeout_micros", "20000"]
    requests = _mixed_requests()
    with running_server(*args) as (client, _):
        answers = _hammer(client, requests)
        _, metrics = client.get("/monitoring/prometheus/metrics", raw=True)
    calls = float(re.search(rb"keras_attention_serving_batch_size_count (\S+)", metrics)[1])
    if batching:
        assert calls < len(requests)  # requests were merged
    else:
        assert calls == len(requests)
    for (path, body), (status, answer) in zip(requests, answers):
        assert status == 200, answer
        expected = reference(translator_dir, body["signature_name"], body["instances"],
                             "source_text")
        assert_same(answer["predictions"], rows_of(expected), str(body))


def test_a_bad_request_merged_with_good_ones_fails_alone(captioner_dir):
    with running_server("--model_name", "c", "--model_base_path", captioner_dir,
                        "--enable_batching", "--batch_timeout_micros", "200000") as (client, _):
        good = {"b64": base64.b64encode(png_bytes(4)).decode()}
        bad = {"b64": base64.b64encode(b"not an image").decode()}
        answers = _hammer(client, [("/v1/models/c:predict", {"instances": [good]}),
                                   ("/v1/models/c:predict", {"instances": [bad]}),
                                   ("/v1/models/c:predict", {"instances": [good, good]})])
    assert [a[0] for a in answers] == [200, 400, 200]
    expected = reference(captioner_dir, "serving_default", [png_bytes(4)], "image_bytes")
    assert_same(answers[0][1]["predictions"], rows_of(expected))


# ---------------------------------------------------------------------- SIGTERM
def test_sigterm_lets_requests_in_flight_finish(translator_dir, tmp_path):
    """Three requests are half sent when SIGTERM comes, so they are surely
    in flight: the server stops taking connections, yet all three get their
    full answers (their model calls, two threads for three, run after the
    signal), and only then does it exit."""
    many = SENTENCES * 8  # a beam search over 64 rows
    payload = json.dumps({"signature_name": "beam_search", "instances": many}).encode()
    log_path = str(tmp_path / "server.log")
    with running_server("--model_name", "t", "--model_base_path", translator_dir,
                        "--rest_api_num_threads", "2", "--access_log", "none",
                        log_path=log_path, log_level="info") as (client, process):
        connections = []
        for _ in range(3):
            connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=120)
            connection.putrequest("POST", "/v1/models/t:predict")
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(payload)))
            connection.endheaders()
            connection.send(payload[:len(payload) // 2])
            connections.append(connection)

        def in_flight():
            _, text = client.get("/monitoring/prometheus/metrics", raw=True)
            return float(re.search(rb"(?m)^keras_attention_serving_requests_in_flight (\S+)$",
                                   text)[1])

        assert wait_for(lambda: in_flight() == 3), "the requests never reached the server"
        process.send_signal(signal.SIGTERM)
        # uvicorn logs this once it has closed its socket with our connections still open.
        assert wait_for(lambda: any("Waiting for connections to close" in line
                                    for line in log_lines(log_path)))
        with pytest.raises(OSError):  # no new connections
            client.get("/v1/models/t", timeout=10)
        for connection in connections:
            connection.send(payload[len(payload) // 2:])
        results = []
        for connection in connections:
            response = connection.getresponse()
            results.append((response.status, json.loads(response.read())))
            connection.close()
        # uvicorn re-raises the signal once it has shut down, as a killed process should.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert [status for status, _ in results] == [200, 200, 200], results
    expected = rows_of(reference(translator_dir, "beam_search", many, "source_text"))
    for _, answer in results:
        assert_same(answer["predictions"], expected)
