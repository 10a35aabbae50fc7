"""A soak run of the server under continuous batching: many requests of
mixed lengths and kinds, clients that leave streams midway, and the
server's resident memory through the run.

    python -m benchmarks.soak_serving --model runs/translation-main-en-es/export/translator

`--requests` requests (test verses of every length) from `--clients`
threads, each on its own keep-alive connection: 70% greedy `:predict`, 10%
beam `:predict`, 10% streams read to the end, and 10% streams the client
closes after the first token (`--kinds greedy`: greedy `:predict` alone,
which the server decodes `--steps-per-call` steps a model call). Every
answer is checked against the same export called in this process. Prints the counts (answered, errors,
answers that differ, answers missing), the decoding rows left in flight at
the end, and the server's resident memory after the warm-up, at its
largest and at the end.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks.bench_serving import post, server_metrics, start_server, stream  # noqa: E402
from benchmarks.common import describe_machine, markdown_table  # noqa: E402

GREEDY, BEAM, STREAM, LEFT = "greedy :predict", "beam :predict", "stream", "stream left"


def request_kind(index, kinds="mixed"):
    """`mixed`: 70% greedy, 10% beam, 10% streams, 10% streams left midway,
    interleaved; `greedy`: greedy alone."""
    if kinds == "greedy":
        return GREEDY
    return {7: BEAM, 8: STREAM, 9: LEFT}.get(index % 10, GREEDY)


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def references(model_dir, verses, beam_verses):
    import numpy as np

    from keras_attention.serving.exported_model import ExportedModel

    model = ExportedModel(model_dir)

    def text(signature, verse):
        out = model.predict(signature, {"source_text": np.array([verse.encode()], object)})
        first = out["text"][0]
        return (first if np.ndim(first) == 0 else first[0]).decode("utf-8")

    return ({verse: text("serving_default", verse) for verse in verses},
            {verse: text("beam_search", verse) for verse in beam_verses})


def rows_in_flight(port):
    return server_metrics(port).get("keras_attention_serving_decoding_rows_in_flight")


def leave_stream(port, body):
    """Opens a stream, reads its first token event, and closes the connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/v1/models/m:generate_stream", body,
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    status = response.status
    if status == 200:
        response.readline()  # "event: token" (or the answer of an empty verse)
    connection.close()
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/translation-main-en-es/export/translator")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2000,
                        help="requests before the reference memory reading")
    parser.add_argument("--verses", type=int, default=400,
                        help="distinct test verses (every length)")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--kinds", choices=["mixed", "greedy"], default="mixed")
    parser.add_argument("--steps-per-call", type=int, default=4,
                        help="the server's --steps_per_call")
    parser.add_argument("--port", type=int, default=18572)
    args = parser.parse_args(argv)
    print("\n".join(describe_machine()))
    from training.translation.data import load_bundled

    test = [source for source, _ in load_bundled("en-es").test]
    step = max(len(test) // args.verses, 1)
    verses = test[::step][:args.verses]
    greedy_answers, beam_answers = references(args.model, verses, verses[::8])
    beam_verses = list(beam_answers)
    process = start_server(args.model, args.port, "continuous batching", 1, args.max_batch_size,
                           args.steps_per_call)
    counts = {kind: {"answered": 0, "errors": 0, "different": 0}
              for kind in (GREEDY, BEAM, STREAM, LEFT)}
    done, lock, memory = [0], threading.Lock(), {}

    def record(kind, ok, same):
        with lock:
            counts[kind]["answered" if ok else "errors"] += 1
            counts[kind]["different"] += int(ok and not same)
            done[0] += 1
            if done[0] == args.warmup:
                memory["after warm-up"] = resident_mib(process.pid)
            if done[0] % 500 == 0:
                memory["largest"] = max(memory.get("largest", 0), resident_mib(process.pid))

    def client(indices):
        connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=600)
        for index in indices:
            kind = request_kind(index, args.kinds)
            if kind == BEAM:
                verse = beam_verses[index % len(beam_verses)]
                status, answer = post(connection, "/v1/models/m:predict", json.dumps(
                    {"signature_name": "beam_search", "instances": [verse]}))
                ok = status == 200
                record(kind, ok, ok and answer["predictions"][0]["text"][0]
                       == beam_answers[verse])
                continue
            verse = verses[index % len(verses)]
            body = json.dumps({"instances": [verse]})
            if kind == LEFT:
                record(kind, leave_stream(args.port, body) == 200, True)
                continue
            if kind == STREAM:
                status, _, answer = stream(connection, "/v1/models/m:generate_stream", body)
            else:
                status, answer = post(connection, "/v1/models/m:predict", body)
            ok = status == 200
            record(kind, ok, ok and answer["predictions"][0]["text"] == greedy_answers[verse])
        connection.close()

    try:
        start = time.perf_counter()
        indices = list(range(args.requests))
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(client, [indices[i::args.clients] for i in range(args.clients)]))
        seconds = time.perf_counter() - start
        deadline = time.monotonic() + 60  # rows of left streams leave at the next step
        while rows_in_flight(args.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        left_in_flight = rows_in_flight(args.port)
        memory["at the end"] = resident_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    total = sum(sum(c.values()) - c["different"] for c in counts.values())
    print()
    print(markdown_table(["requests", "answered", "errors", "answers that differ"],
                         [[kind, str(c["answered"]), str(c["errors"]), str(c["different"])]
                          for kind, c in counts.items()]))
    print()
    warm = memory["after warm-up"]
    print(f"{total} requests in {seconds:.0f} s ({total / seconds:.1f}/s), "
          f"{args.clients} clients; missing answers: {args.requests - total}; "
          f"decoding rows in flight at the end: {left_in_flight:.0f}")
    print(f"server resident memory: {warm:.0f} MiB after {args.warmup} requests, "
          f"{memory['largest']:.0f} MiB at most, {memory['at the end']:.0f} MiB at the end "
          f"({100 * (memory['at the end'] / warm - 1):+.1f}% after the warm-up)")
    bad = sum(c["errors"] + c["different"] for c in counts.values())
    return 1 if bad or args.requests != total or left_in_flight else 0


if __name__ == "__main__":
    sys.exit(main())
