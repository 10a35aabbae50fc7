"""The REST server's cost over an in-process call, and what whole-call and
continuous batching buy, on one translation export (one verse a request),
in one run.

    python -m benchmarks.bench_serving --model runs/translation-main-en-es/export/translator

At concurrency 1 it times each test verse in this process and through the
server alternately (the server's overhead is their ratio), and times the
export's `encode` and one `decode_step` of one row. Then, for each
concurrency (client threads, each on its own keep-alive connection), it
sends `--requests` one-verse requests to the server without batching, with
whole-call batching (`--enable_batching`) and with continuous batching
(`--continuous_batching`, also streamed through `:generate_stream`), once
for each of `--steps-per-call` (greedy steps one model call may run). The
servers run side by side (one port each) and are measured in turn, level
by level, for `--rounds` rounds. Prints requests per second, p50 / p99 latency, the p50 time to the first
streamed token, rows per model call (per decoding step under continuous
batching), and how many answers differ from the in-process answer. The
clients run on the same machine as the server.
"""

import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import describe_machine, markdown_table  # noqa: E402

NO_BATCHING, WHOLE_CALL, CONTINUOUS = "no batching", "whole-call batching", "continuous batching"


def test_sentences(count):
    from training.translation.data import load_bundled

    return [source for source, _ in load_bundled("en-es").test[:count]]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def predict_body(sentence):
    return json.dumps({"instances": [sentence]})


def post(connection, path, body):
    """One request on a keep-alive connection: (status, JSON answer)."""
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def stream(connection, path, body):
    """One `:generate_stream` request: (status, seconds to the first token
    event or None, the final `answer` event's JSON)."""
    start = time.perf_counter()
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        return response.status, None, json.loads(response.read())
    first, event, answer = None, None, None
    while True:
        line = response.readline()
        if not line:
            break
        line = line.decode("utf-8").rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
            if event == "token" and first is None:
                first = time.perf_counter() - start
        elif line.startswith("data: ") and event in ("answer", "error"):
            answer = json.loads(line[6:])
            if event == "error":
                return 500, first, answer
            break
    response.read()  # the stream's end
    return 200, first, answer


def in_process_reference(model_dir, port, sentences, repeats):
    """Concurrency 1: each verse timed in this process, then through the
    server (no batching), alternately. Returns (in-process latencies,
    server latencies, in-process answers, encode and one-step latencies,
    mean decoding steps per verse)."""
    import numpy as np

    from keras_attention.export_format import read_metadata
    from keras_attention.serving.exported_model import ExportedModel

    model = ExportedModel(model_dir)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def local(sentence):
        return model.predict("serving_default",
                             {"source_text": np.array([sentence.encode()], object)})

    for sentence in sentences[:8]:  # warm-up (traces, caches, connection)
        local(sentence), post(connection, "/v1/models/m:predict", predict_body(sentence))
    local_times, remote_times, answers, steps = [], [], {}, []
    for _ in range(repeats):
        for sentence in sentences:
            start = time.perf_counter()
            out = local(sentence)
            answers[sentence] = out["text"][0].decode("utf-8")
            steps.append(int(out["length"][0]) + 1)  # the end token is a step
            middle = time.perf_counter()
            post(connection, "/v1/models/m:predict", predict_body(sentence))
            local_times.append(middle - start)
            remote_times.append(time.perf_counter() - middle)
    connection.close()
    # One row: the encoder's run, then one decoding step.
    step = read_metadata(model.path)["step_signatures"]["decode_step"]
    encode_times, step_times = [], []
    for _ in range(repeats):
        for sentence in sentences:
            start = time.perf_counter()
            encoded = model.predict("encode", {"source_text": np.array([sentence.encode()],
                                                                       object)})
            middle = time.perf_counter()
            model.predict("decode_step", {
                "tokens": np.array([step["start_token"]], "int32"),
                **{name: encoded[name] for name in step["state"] + step["constants"]}})
            encode_times.append(middle - start)
            step_times.append(time.perf_counter() - middle)
    return local_times, remote_times, answers, encode_times, step_times, \
        statistics.mean(steps)


def server_metrics(port):
    """The server's Prometheus samples without labels: name -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if not sample.labels}


def batch_histogram(port):
    """(rows, model calls) so far: the server's batch-size histogram (under
    continuous batching each decoding step is one call)."""
    metrics = server_metrics(port)
    return (metrics.get("keras_attention_serving_batch_size_sum", 0.0),
            metrics.get("keras_attention_serving_batch_size_count", 0.0))


def load_test(port, sentences, concurrency, requests, streamed=False):
    """`requests` one-verse requests from `concurrency` threads, each with a
    keep-alive connection. Returns (latencies, first-token times, seconds,
    [(verse, answer text or None)])."""
    jobs = [sentences[i % len(sentences)] for i in range(requests)]
    per_thread = [jobs[i::concurrency] for i in range(concurrency)]
    path = "/v1/models/m:generate_stream" if streamed else "/v1/models/m:predict"

    def client(work):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        latencies, firsts, answers = [], [], []
        for sentence in work:
            start = time.perf_counter()
            if streamed:
                status, first, answer = stream(connection, path, predict_body(sentence))
                firsts.append(first)
            else:
                status, answer = post(connection, path, predict_body(sentence))
            latencies.append(time.perf_counter() - start)
            answers.append((sentence, answer["predictions"][0]["text"] if status == 200
                            else None))
        connection.close()
        return latencies, firsts, answers

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(client, per_thread))
    seconds = time.perf_counter() - start
    return ([t for r in results for t in r[0]], [t for r in results for t in r[1]], seconds,
            [a for r in results for a in r[2]])


def start_server(model_dir, port, mode, threads, max_batch_size, steps_per_call=1):
    args = [sys.executable, "-m", "keras_attention.serving", "--model_name", "m",
            "--model_base_path", model_dir, "--rest_api_port", str(port),
            "--rest_api_num_threads", str(threads), "--access_log", "none",
            "--log_level", "warning", "--file_system_poll_wait_seconds", "0",
            "--max_batch_size", str(max_batch_size)]
    if mode == WHOLE_CALL:
        args += ["--enable_batching", "--batch_timeout_micros", "5000"]
    elif mode == CONTINUOUS:
        args += ["--continuous_batching", "--steps_per_call", str(steps_per_call)]
    process = subprocess.Popen(args, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/v1/models/m")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server did not start")


def server_label(mode, threads, steps_per_call):
    label = f"server, {mode}, {threads} model thread{'s' if threads > 1 else ''}"
    if mode == CONTINUOUS:
        label += f", {steps_per_call} step{'s' if steps_per_call > 1 else ''} a call"
    return label


def server_key(mode, threads, steps_per_call):
    """A server's key in the summary: its mode, and steps a call for continuous batching."""
    return (mode, steps_per_call) if mode == CONTINUOUS else mode


def milliseconds(values, fraction):
    values = [v for v in values if v is not None]
    return f"{1000 * percentile(values, fraction):.1f}" if values else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/translation-main-en-es/export/translator")
    parser.add_argument("--requests", type=int, default=192,
                        help="requests per concurrency level and server (at least 4 per "
                             "client thread)")
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--threads", type=int, default=2,
                        help="model-call threads of the server without batching")
    parser.add_argument("--max-batch-size", type=int, default=64,
                        help="rows per merged call or decoding step of the batching servers")
    parser.add_argument("--steps-per-call", default="1,4",
                        help="the continuous batching servers' --steps_per_call, one each")
    parser.add_argument("--port", type=int, default=18571)
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes over the 64 verses at concurrency 1")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over every concurrency level and server (requests/s: "
                             "the median round; latencies: all rounds)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    steps_per_call = [int(s) for s in args.steps_per_call.split(",")]
    print("\n".join(describe_machine()))
    sentences = test_sentences(64)
    rows, mismatches, failures, summary = [], 0, 0, {}
    servers = [(NO_BATCHING, args.threads, 1), (WHOLE_CALL, 1, 1)]
    servers += [(CONTINUOUS, 1, per_call) for per_call in steps_per_call]
    processes = []
    try:
        for index, (mode, threads, per_call) in enumerate(servers):
            processes.append(start_server(args.model, args.port + index, mode, threads,
                                          args.max_batch_size, per_call))
        local_times, remote_times, reference, encodes, steps, verse_steps = \
            in_process_reference(args.model, args.port, sentences, args.repeats)
        summary.update(local=statistics.median(local_times),
                       remote=statistics.median(remote_times),
                       encode=statistics.median(encodes), step=statistics.median(steps),
                       verse_steps=verse_steps)
        for name, times in (("in process", local_times),
                            (server_label(*servers[0]), remote_times)):
            rows.append([name, "1 (interleaved)", f"{1 / statistics.mean(times):.1f}",
                         milliseconds(times, .5), milliseconds(times, .99), "-", "1.0"])
        for index in range(len(servers)):
            load_test(args.port + index, sentences, 4, 16)  # warm-up
        # Rounds over every concurrency level and server in turn: a drift of
        # the machine's speed falls on every server alike.
        runs = collections.defaultdict(list)
        for _ in range(args.rounds):
            for concurrency in levels:
                for index, server in enumerate(servers):
                    for streamed in [False, True] if server[0] == CONTINUOUS else [False]:
                        port = args.port + index
                        rows_before, calls_before = batch_histogram(port)
                        requests = max(args.requests, 4 * concurrency)
                        latencies, firsts, seconds, answers = load_test(
                            port, sentences, concurrency, requests, streamed)
                        rows_after, calls_after = batch_histogram(port)
                        failures += sum(text is None for _, text in answers)
                        mismatches += sum(text is not None and text != reference[s]
                                          for s, text in answers)
                        runs[(server, streamed, concurrency)].append(
                            (len(latencies) / seconds, latencies, firsts,
                             (rows_after - rows_before) / max(calls_after - calls_before, 1)))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=60)
    for server in servers:
        for concurrency in levels:
            for streamed in [False, True] if server[0] == CONTINUOUS else [False]:
                measured = runs[(server, streamed, concurrency)]
                rps = statistics.median(run[0] for run in measured)
                latencies = [t for run in measured for t in run[1]]
                firsts = [t for run in measured for t in run[2]]
                summary[(server_key(*server), streamed, concurrency)] = (
                    rps, statistics.median(latencies), percentile(latencies, .99),
                    statistics.median(firsts) if firsts else None)
                rows.append([server_label(*server) + (", streamed" if streamed else ""),
                             str(concurrency), f"{rps:.1f}", milliseconds(latencies, .5),
                             milliseconds(latencies, .99),
                             milliseconds(firsts, .5) if streamed else "-",
                             f"{statistics.mean(run[3] for run in measured):.1f}"])
    print()
    print(markdown_table(["path", "concurrency", "requests/s", "p50 ms", "p99 ms",
                          "first token p50 ms", "rows per model call"], rows))
    print()
    print(f"server overhead at concurrency 1 (p50, interleaved): "
          f"{100 * (summary['remote'] / summary['local'] - 1):+.1f}%")
    print(f"one row in process: encode p50 {1000 * summary['encode']:.1f} ms, one decoding "
          f"step p50 {1000 * summary['step']:.1f} ms; a whole verse p50 "
          f"{1000 * summary['local']:.1f} ms, {summary['verse_steps']:.1f} decoding steps "
          f"on average")
    for per_call in steps_per_call:
        continuous_mode = (CONTINUOUS, per_call)
        for level in levels:
            continuous = summary[(continuous_mode, False, level)][0]
            print(f"concurrency {level}: continuous batching, {per_call} a call, "
                  f"{continuous / summary[(NO_BATCHING, False, level)][0]:.2f}x the requests/s "
                  f"of no batching, {continuous / summary[(WHOLE_CALL, False, level)][0]:.2f}x "
                  f"whole-call batching")
        if 16 in levels and 1 in levels:
            p99, p50 = (summary[(continuous_mode, False, 16)][2],
                        summary[(continuous_mode, False, 1)][1])
            print(f"continuous batching, {per_call} a call, p99 at concurrency 16 over p50 at "
                  f"concurrency 1: {p99 / p50:.2f}x")
    for level in levels:
        first = summary[((CONTINUOUS, steps_per_call[-1]), True, level)][3]
        print(f"concurrency {level}: first streamed token p50 {1000 * first:.1f} ms = encode + "
              f"{(first - summary['encode']) / summary['step']:.2f} one-row steps")
    print(f"answers different from the in-process answer: {mismatches}; failed requests: "
          f"{failures}")
    return 1 if mismatches or failures else 0


if __name__ == "__main__":
    sys.exit(main())
