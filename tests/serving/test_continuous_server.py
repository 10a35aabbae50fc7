"""The REST server with `--continuous_batching`, over real HTTP on
loopback: concurrent clients of mixed lengths, greedy and beam, two tasks,
each answered as the export's whole-sequence signature answers that
request alone; `:generate_stream` as server-sent events, on a version's
path too; its bad requests; the metrics of the running batch; SIGTERM
with a stream and a request in flight."""

import base64
import concurrent.futures
import http.client
import json
import re
import signal

import pytest
from server_process import running_server
from serving_exports import png_bytes
from test_server import SENTENCES, assert_same, log_lines, reference, rows_of, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(translator_dir, captioner_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("continuous")
    config = folder / "models.config"
    config.write_text(f"""
model_config_list {{
  config {{ name: "translator" base_path: "{translator_dir}" }}
  config {{ name: "captioner" base_path: "{captioner_dir}" }}
}}""")
    log_path = str(folder / "access.log")
    with running_server("--model_config_file", str(config), "--continuous_batching",
                        "--max_batch_size", "8", "--access_log", log_path) as (client, _):
        yield client, log_path


def read_events(port, path, body):
    """POSTs `body` and reads the server-sent events: `(status, headers,
    [(event, data)])`, or `(status, headers, JSON error)` for a non-stream."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    headers = dict(response.getheaders())
    if response.status != 200:
        return response.status, headers, json.loads(response.read())
    events, name = [], None
    for line in response:  # one line at a time, as the events arrive
        line = line.decode("utf-8").rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    connection.close()
    return response.status, headers, events


def metric(client, name):
    _, text = client.get("/monitoring/prometheus/metrics", raw=True)
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics")


def test_concurrent_requests_get_their_own_answers(server, translator_dir, captioner_dir):
    client, _ = server
    jobs = [("translator", signature, [sentence], "source_text")
            for sentence in SENTENCES for signature in ("serving_default", "beam_search")]
    jobs += [("translator", "serving_default", SENTENCES[:5], "source_text"),
             ("translator", "beam_search", ["", "cat"], "source_text")]
    images = [png_bytes(seed) for seed in range(3)]
    jobs += [("captioner", signature, [image], "image_bytes")
             for image in images for signature in ("serving_default", "beam_search")]
    directories = {"translator": translator_dir, "captioner": captioner_dir}
    steps_before = metric(client, "keras_attention_serving_decoding_steps_total")

    def send(job):
        model, signature, values, name = job
        instances = [{"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v
                     for v in values]
        return client.post(f"/v1/models/{model}:predict",
                           {"signature_name": signature, "instances": instances})

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, jobs * 2))
    for (model, signature, values, name), (status, answer) in zip(jobs * 2, answers):
        assert status == 200, answer
        expected = reference(directories[model], signature, values, name)
        assert_same(answer["predictions"], rows_of(expected), f"{model} {signature} {values}")
    assert metric(client, "keras_attention_serving_decoding_steps_total") > steps_before
    assert metric(client, "keras_attention_serving_decoding_rows_in_flight") == 0


def test_a_stream_sends_each_token_then_the_predict_answer(server, translator_dir):
    client, log_path = server
    status, headers, events = read_events(client.port, "/v1/models/translator:generate_stream",
                                          {"instances": ["dog"]})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in events]
    assert names == ["token"] * (len(events) - 1) + ["answer"]
    _, predicted = client.post("/v1/models/translator:predict", {"instances": ["dog"]})
    assert events[-1][1] == predicted
    answer = predicted["predictions"][0]
    tokens = [data for _, data in events[:-1]]
    assert len(tokens) == answer["length"] > 3
    assert [t["token"] for t in tokens] == answer["tokens"]
    assert [t["id"] for t in tokens] == answer["token_ids"]
    assert [t["attention"] for t in tokens] == answer["attention"]
    assert any('"api": "generate_stream"' in line and '"status": 200' in line
               for line in log_lines(log_path))
    status, _, versioned = read_events(client.port,
                                       "/v1/models/translator/versions/1:generate_stream",
                                       {"instances": ["dog"]})
    assert status == 200 and versioned == events
    _, text = client.get("/monitoring/prometheus/metrics", raw=True)
    assert re.search(rb'(?m)^keras_attention_serving_request_latency_seconds_count'
                     rb'\{api="generate_stream",model="translator"\} [2-9]', text)


def test_a_stream_of_an_image_in_columnar_format(server, captioner_dir):
    client, _ = server
    image = png_bytes(4)
    status, _, events = read_events(
        client.port, "/v1/models/captioner:generate_stream",
        {"inputs": {"image_bytes": [{"b64": base64.b64encode(image).decode()}]}})
    assert status == 200
    expected = reference(captioner_dir, "serving_default", [image], "image_bytes")
    assert_same(events[-1][1]["outputs"], expected)
    assert [data["token"] for _, data in events[:-1]] == expected["tokens"][0]


@pytest.mark.parametrize("path, body, status, message", [
    ("/v1/models/translator:generate_stream", {"instances": ["a", "b"]}, 400,
     "generate_stream takes one input row; this request has 2"),
    ("/v1/models/translator:generate_stream",
     {"signature_name": "beam_search", "instances": ["a"]}, 400,
     "beam_search: beam search's words are not final until it ends"),
    ("/v1/models/translator:generate_stream",
     {"signature_name": "encode", "instances": ["a"]}, 400,
     "encode: cannot be decoded step by step"),
    ("/v1/models/nobody:generate_stream", {"instances": ["a"]}, 404, "nobody"),
    ("/v1/models/translator:generate_stream", {"instances": []}, 400, ""),
    ("/v1/models/captioner:generate_stream", {"instances": [{"b64": "bm90IGFuIGltYWdl"}]},
     400, "image"),
])
def test_bad_stream_requests_get_an_error_status(server, path, body, status, message):
    client, _ = server
    got, headers, answer = read_events(client.port, path, body)
    assert (got, headers["content-type"]) == (status, "application/json"), answer
    assert message in answer["error"]


def test_a_client_leaving_a_stream_leaves_the_server_serving(server, translator_dir):
    client, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=60)
    connection.request("POST", "/v1/models/translator:generate_stream",
                       json.dumps({"instances": ["dog"]}), {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.readline().startswith(b"event: token")
    connection.close()  # mid-stream
    status, answer = client.post("/v1/models/translator:predict", {"instances": SENTENCES[:3]})
    assert status == 200
    expected = reference(translator_dir, "serving_default", SENTENCES[:3], "source_text")
    assert_same(answer["predictions"], rows_of(expected))


def test_sigterm_lets_streams_and_requests_in_flight_finish(translator_dir, tmp_path):
    """A stream and a beam request are half sent when SIGTERM comes: both get
    their whole answers, then the server exits."""
    log_path = str(tmp_path / "server.log")
    bodies = [("/v1/models/t:generate_stream", {"instances": ["dog"]}),
              ("/v1/models/t:predict", {"signature_name": "beam_search",
                                        "instances": SENTENCES})]
    with running_server("--model_name", "t", "--model_base_path", translator_dir,
                        "--continuous_batching", "--access_log", "none",
                        log_path=log_path, log_level="info") as (client, process):
        connections = []
        for path, body in bodies:
            payload = json.dumps(body).encode()
            connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=120)
            connection.putrequest("POST", path)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(payload)))
            connection.endheaders()
            connection.send(payload[:len(payload) // 2])
            connections.append((connection, payload))
        assert wait_for(lambda: metric(client, "keras_attention_serving_requests_in_flight")
                        == 2), "the requests never reached the server"
        process.send_signal(signal.SIGTERM)
        assert wait_for(lambda: any("Waiting for connections to close" in line
                                    for line in log_lines(log_path)))
        for connection, payload in connections:
            connection.send(payload[len(payload) // 2:])
        stream = connections[0][0].getresponse()
        assert stream.status == 200
        events = stream.read().decode().split("\n\n")
        answer = json.loads([e for e in events if e.startswith("event: answer")][0]
                            .split("data: ", 1)[1])
        predicted = connections[1][0].getresponse()
        assert predicted.status == 200
        beam = json.loads(predicted.read())
        # uvicorn re-raises the signal once it has shut down, as a killed process should.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    assert_same(answer["predictions"], rows_of(reference(translator_dir, "serving_default",
                                                         ["dog"], "source_text")))
    assert_same(beam["predictions"], rows_of(reference(translator_dir, "beam_search",
                                                       SENTENCES, "source_text")))
