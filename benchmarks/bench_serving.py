"""The REST server's cost over an in-process call, and what dynamic batching
buys, on one translation export (one sentence a request), in one run.

    python -m benchmarks.bench_serving --model runs/translation-main-en-es/export/translator

At concurrency 1 it times each test sentence in this process and through
the server alternately (the server's overhead is their ratio). Then, for
each concurrency (1, 4, 16 client threads, each on its own keep-alive
connection), it sends `--requests` one-sentence requests to our server
without batching and with batching. Prints requests per second, p50 / p99
latency and rows per model call, and checks that every answer equals the
in-process answer. The clients run on the same machine as the server.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.common import describe_machine, markdown_table  # noqa: E402


def test_sentences(count):
    from training.translation.data import load_bundled

    return [source for source, _ in load_bundled("en-es").test[:count]]


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def interleaved_latency(model_dir, port, sentences, repeats):
    """Concurrency 1: each sentence timed in this process, then through the
    server (no batching), alternately, so machine noise hits both alike.
    Returns (in-process latencies, server latencies, in-process answers)."""
    import numpy as np

    from keras_attention.serving.exported_model import ExportedModel

    model = ExportedModel(model_dir)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    path = "/v1/models/m:predict"

    def local(sentence):
        return model.predict("serving_default",
                             {"source_text": np.array([sentence.encode()], object)})

    def remote(sentence):
        connection.request("POST", path, json.dumps({"instances": [sentence]}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        return json.loads(response.read())

    for sentence in sentences[:8]:  # warm-up (traces, caches, connection)
        local(sentence), remote(sentence)
    local_times, remote_times, answers = [], [], {}
    for _ in range(repeats):
        for sentence in sentences:
            start = time.perf_counter()
            answers[sentence] = local(sentence)["text"][0].decode("utf-8")
            middle = time.perf_counter()
            remote(sentence)
            local_times.append(middle - start)
            remote_times.append(time.perf_counter() - middle)
    connection.close()
    return local_times, remote_times, answers


def batch_calls(port):
    """Model calls the server has made so far (its batch-size histogram count)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/monitoring/prometheus/metrics")
    text = connection.getresponse().read().decode()
    for line in text.splitlines():
        if line.startswith("keras_attention_serving_batch_size_count"):
            return float(line.split()[-1])
    return 0.0


def load_test(port, model_name, sentences, concurrency, requests):
    """`requests` one-sentence requests from `concurrency` threads, each
    with a keep-alive connection. Returns (latencies, seconds, answers)."""
    jobs = [sentences[i % len(sentences)] for i in range(requests)]
    per_thread = [jobs[i::concurrency] for i in range(concurrency)]
    path = f"/v1/models/{model_name}:predict"

    def client(work):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        latencies, answers = [], []
        for sentence in work:
            body = json.dumps({"instances": [sentence]})
            start = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(payload.decode())
            answers.append((sentence, json.loads(payload)["predictions"][0]["text"]))
        connection.close()
        return latencies, answers

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(client, per_thread))
    seconds = time.perf_counter() - start
    return ([t for r in results for t in r[0]], seconds, [a for r in results for a in r[1]])


def start_server(model_dir, port, batching, threads):
    import subprocess

    args = [sys.executable, "-m", "keras_attention.serving", "--model_name", "m",
            "--model_base_path", model_dir, "--rest_api_port", str(port),
            "--rest_api_num_threads", str(threads), "--access_log", "none",
            "--log_level", "warning", "--file_system_poll_wait_seconds", "0"]
    if batching:
        args += ["--enable_batching", "--max_batch_size", "32", "--batch_timeout_micros",
                 "5000"]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/translation-main-en-es/export/translator")
    parser.add_argument("--requests", type=int, default=192,
                        help="requests per concurrency level and server")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--threads", type=int, default=2,
                        help="model-call threads of the server without batching")
    parser.add_argument("--batching-threads", default="1,2",
                        help="model-call threads of the batching servers to try")
    parser.add_argument("--port", type=int, default=18571)
    parser.add_argument("--repeats", type=int, default=3,
                        help="passes over the 64 sentences at concurrency 1")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    print("\n".join(describe_machine()))
    sentences = test_sentences(64)
    rows, mismatches, summary, reference = [], 0, {}, None
    setups = [(False, args.threads)] + [(True, int(t)) for t in args.batching_threads.split(",")]
    for batching, threads in setups:
        label = (f"server, batching, {threads} model thread{'s' if threads > 1 else ''}"
                 if batching else f"server, no batching, {threads} model threads")
        process = start_server(args.model, args.port, batching, threads)
        try:
            if not batching:
                local_times, remote_times, reference = interleaved_latency(
                    args.model, args.port, sentences, args.repeats)
                summary["local"] = statistics.median(local_times)
                summary["remote"] = statistics.median(remote_times)
                for name, times in (("in process", local_times), (label, remote_times)):
                    rows.append([name, "1 (interleaved)", f"{1 / statistics.mean(times):.1f}",
                                 f"{1000 * statistics.median(times):.1f}",
                                 f"{1000 * percentile(times, .99):.1f}", "1.0"])
            load_test(args.port, "m", sentences, 4, 16)  # warm-up
            for concurrency in levels:
                calls_before = batch_calls(args.port)
                latencies, seconds, answers = load_test(args.port, "m", sentences,
                                                        concurrency, args.requests)
                rows_per_call = len(latencies) / max(batch_calls(args.port) - calls_before, 1)
                mismatches += sum(text != reference[s] for s, text in answers)
                rps = len(latencies) / seconds
                summary[(batching, threads, concurrency)] = rps
                rows.append([label, str(concurrency), f"{rps:.1f}",
                             f"{1000 * statistics.median(latencies):.1f}",
                             f"{1000 * percentile(latencies, .99):.1f}",
                             f"{rows_per_call:.1f}"])
        finally:
            process.terminate()
            process.wait(timeout=60)
    print()
    print(markdown_table(["path", "concurrency", "requests/s", "p50 ms", "p99 ms",
                          "rows per model call"], rows))
    print()
    overhead = summary["remote"] / summary["local"] - 1
    print(f"server overhead at concurrency 1 (p50, interleaved): {100 * overhead:+.1f}%")
    top = max(levels)
    batched = [(rps, key[1]) for key, rps in summary.items()
               if isinstance(key, tuple) and key[0] and key[2] == top]
    if batched:
        rps, threads = max(batched)
        ratio = rps / summary[(False, args.threads, top)]
        print(f"batching at concurrency {top} (best setup, {threads} model thread(s)): "
              f"{ratio:.2f}x the requests/s of no batching")
    print(f"answers different from the in-process answer: {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
