"""Dynamic batching without TensorFlow: a fake model whose answers have
axes that grow with the batch's longest row, as the exports' do. Merged
answers must equal the answers each request gets alone, exactly."""

import asyncio

import numpy as np
import pytest

from keras_attention.serving.batching import (BatchingOptions, BatchLayout, DynamicBatcher,
                                              batch_layout, cut_rows)
from keras_attention.serving.exported_model import SignatureInfo, TensorInfo


class FakeSeq2Seq:
    """Input: `n [B]` int32. Output for row i: `length = n % 5`, tokens
    `[B, T]` (T = the batch's longest length) holding i-dependent ids then
    zeros, attention `[B, T, S]` with S = the batch's largest n % 3 + 1."""

    def __init__(self, metadata=True, fail_on=None):
        string = TensorInfo(np.dtype(object), "DT_STRING", (None,))
        self.signatures = {"serving_default": SignatureInfo(
            "serving_default", {"n": TensorInfo(np.dtype("int32"), "DT_INT32", (None,))},
            {"length": TensorInfo(np.dtype("int32"), "DT_INT32", (None,)),
             "width": TensorInfo(np.dtype("int32"), "DT_INT32", (None,)),
             "tokens": TensorInfo(np.dtype("int32"), "DT_INT32", (None, None)),
             "attention": TensorInfo(np.dtype("float32"), "DT_FLOAT", (None, None, None)),
             "text": string})}
        self.metadata = {"signatures": {"serving_default": {
            "output_axes": {"length": ["batch"], "width": ["batch"], "text": ["batch"],
                            "tokens": ["batch", "output_token"],
                            "attention": ["batch", "output_token", "source_token"]},
            "axis_lengths": {"output_token": "length", "source_token": "width"}}}} \
            if metadata else {}
        self.fail_on = fail_on
        self.calls = []

    def signature(self, name=None):
        return self.signatures[name or "serving_default"]

    def predict(self, signature_name, inputs):
        n = inputs["n"]
        self.calls.append(len(n))
        if self.fail_on is not None and self.fail_on in n:
            raise ValueError(f"bad row {self.fail_on}")
        length, width = n % 5, n % 3 + 1
        longest, widest = max(length.max(), 0), width.max()
        tokens = np.zeros((len(n), longest), "int32")
        attention = np.zeros((len(n), longest, widest), "float32")
        for i, (value, size) in enumerate(zip(n, length)):
            tokens[i, :size] = value + 1 + np.arange(size)
            attention[i, :size, :width[i]] = 1.0 / width[i]
        text = np.array([str(v).encode() for v in n], object)
        return {"length": length.astype("int32"), "width": width.astype("int32"),
                "tokens": tokens, "attention": attention, "text": text}


def run_concurrently(model, requests, options, num_threads=1):
    async def main():
        async def run_in_thread(function, *args):
            return await asyncio.to_thread(function, *args)

        batcher = DynamicBatcher(options, run_in_thread, num_threads)
        tasks = [batcher.predict(model, "serving_default", {"n": np.array(r, "int32")}, len(r))
                 for r in requests]
        return await asyncio.gather(*tasks, return_exceptions=True), batcher

    return asyncio.run(main())


REQUESTS = [[4], [0, 2], [7], [13, 1, 3], [5], [9], [2], [8, 8]]


def test_merged_answers_equal_the_answers_alone():
    model = FakeSeq2Seq()
    answers, batcher = run_concurrently(model, REQUESTS, BatchingOptions(8, 50_000))
    assert max(batcher.batch_sizes) > 1
    assert sum(batcher.batch_sizes) == sum(len(r) for r in REQUESTS)
    assert all(size <= 8 for size in batcher.batch_sizes)
    for request, answer in zip(REQUESTS, answers):
        alone = model.predict("serving_default", {"n": np.array(request, "int32")})
        assert set(answer) == set(alone)
        for name in alone:
            assert answer[name].shape == alone[name].shape, name
            np.testing.assert_array_equal(answer[name], alone[name])


def test_a_failing_batch_is_rerun_per_request():
    model = FakeSeq2Seq(fail_on=7)
    answers, _ = run_concurrently(model, REQUESTS, BatchingOptions(32, 50_000))
    for request, answer in zip(REQUESTS, answers):
        if 7 in request:
            assert isinstance(answer, ValueError) and "bad row 7" in str(answer)
        else:
            np.testing.assert_array_equal(answer["tokens"], model.predict(
                "serving_default", {"n": np.array(request, "int32")})["tokens"])


def test_growing_outputs_without_metadata_are_never_merged():
    model = FakeSeq2Seq(metadata=False)
    assert batch_layout(model, "serving_default") is None
    _, batcher = run_concurrently(model, REQUESTS, BatchingOptions(32, 50_000))
    assert batcher.batch_sizes == [len(r) for r in REQUESTS]


def test_fixed_shape_outputs_merge_without_metadata():
    model = FakeSeq2Seq(metadata=False)
    info = model.signatures["serving_default"]
    model.signatures["serving_default"] = info._replace(outputs={
        "length": info.outputs["length"], "text": info.outputs["text"]})
    assert batch_layout(model, "serving_default") == BatchLayout()


def test_cut_rows_cuts_growing_axes_to_the_rows_longest():
    layout = BatchLayout({"length": ["batch", "hypothesis"],
                          "tokens": ["batch", "hypothesis", "output_token"]},
                         {"output_token": "length"})
    outputs = {"length": np.array([[1, 3], [2, 0], [4, 4]]),
               "tokens": np.arange(3 * 2 * 4).reshape(3, 2, 4)}
    rows = cut_rows(outputs, 1, 2, layout)
    assert rows["tokens"].shape == (1, 2, 2)
    np.testing.assert_array_equal(rows["tokens"], outputs["tokens"][1:2, :, :2])


@pytest.mark.parametrize("options", [BatchingOptions(1, 0), BatchingOptions(3, 0)])
def test_bounds_hold_for_any_options(options):
    model = FakeSeq2Seq()
    answers, batcher = run_concurrently(model, REQUESTS, options)
    assert all(not isinstance(a, Exception) for a in answers)
    assert all(size <= max(options.max_batch_size, 3) for size in batcher.batch_sizes)


def test_requests_gather_while_every_thread_is_busy():
    """No waiting at all (timeout 0), one thread: the first request runs
    alone, and the ones that arrive while it runs form the next batch."""
    import threading

    running, release = threading.Event(), threading.Event()

    class Gated(FakeSeq2Seq):
        def predict(self, signature_name, inputs):
            running.set()
            if not release.wait(30):
                raise TimeoutError("never released")
            return super().predict(signature_name, inputs)

    async def main():
        async def run_in_thread(function, *args):
            return await asyncio.to_thread(function, *args)

        def queued_rows():
            return sum(queue.rows for queue in batcher._queues.values())

        model = Gated()
        batcher = DynamicBatcher(BatchingOptions(32, 0), run_in_thread, num_threads=1)
        first = asyncio.ensure_future(
            batcher.predict(model, "serving_default", {"n": np.array([1], "int32")}, 1))
        assert await asyncio.to_thread(running.wait, 30), "the first request never ran"
        later = [asyncio.ensure_future(batcher.predict(
            model, "serving_default", {"n": np.array([v], "int32")}, 1)) for v in range(2, 8)]
        deadline = asyncio.get_running_loop().time() + 30
        while queued_rows() < len(later):  # all six wait behind the busy thread
            assert asyncio.get_running_loop().time() < deadline, queued_rows()
            await asyncio.sleep(0.001)
        release.set()
        await asyncio.gather(first, *later)
        return batcher.batch_sizes

    assert asyncio.run(main()) == [1, 6]
