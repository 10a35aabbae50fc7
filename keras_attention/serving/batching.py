"""Dynamic batching: concurrent requests to one signature run as one batch.

On a CPU the exported decoder costs much less per row in a batch of 32
than alone, so a server that merges concurrent requests serves more of
them. Merging must never change an answer:

- only requests whose inputs agree beyond the batch axis (shape, dtype)
  are merged, so nothing is padded;
- each request's rows are cut back out of the batch's outputs, and every
  axis that grows with the batch's longest row (the output words, the
  source words) is cut to the longest of the request's own rows, named by
  the export's metadata (`output_axes`, `axis_lengths`, written by
  `training.core.export`). A signature whose outputs have such axes but
  no metadata to cut them by is never batched;
- if a merged batch fails (one request's bytes are not an image), each
  request is run alone, so only the bad one gets the error.

`DynamicBatcher` has an example.
"""

import asyncio
from typing import NamedTuple

import numpy as np

from keras_attention.export_format import cut_to_extents, signature_metadata


class BatchingOptions(NamedTuple):
    """Bounds of a merged batch (TF Serving's batching parameters).

    max_batch_size: Most rows in one batch (a larger request runs alone).
    batch_timeout_micros: Longest a request waits for others to join.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000


class BatchLayout(NamedTuple):
    """How to cut one request's answer out of a batch's outputs.

    axes: output name -> axis names (`batch` first); None when the outputs
        have no axis that grows with the batch.
    lengths: axis name -> the output that holds each row's extent on it.
    """

    axes: dict = None
    lengths: dict = {}


def batch_layout(model, signature_name):
    """The `BatchLayout` of a signature, or None if it must not be batched."""
    info = model.signature(signature_name)
    described = signature_metadata(model.metadata, info.name)
    axes, lengths = described.get("output_axes"), described.get("axis_lengths", {})
    if axes and set(axes) >= set(info.outputs) and all(
            axes[name][:1] == ["batch"] for name in info.outputs) and all(
            output in info.outputs for output in lengths.values()):
        return BatchLayout({name: axes[name] for name in info.outputs}, lengths)
    # No metadata: batch only if every output is [batch, fixed dims ...].
    for spec in info.outputs.values():
        if spec.shape is None or len(spec.shape) == 0 or any(d is None for d in spec.shape[1:]):
            return None
    return BatchLayout()


def cut_rows(outputs, start, stop, layout):
    """Rows `[start, stop)` of a batch's outputs, each growing axis cut to
    the longest of these rows (what the rows alone would have got)."""
    rows = {name: value[start:stop] for name, value in outputs.items()}
    if not layout.axes:
        return rows
    extents = {axis: int(rows[output].max()) if rows[output].size else 0
               for axis, output in layout.lengths.items()}
    return cut_to_extents(rows, layout.axes, extents)


def merge_key(inputs):
    """What two requests' inputs must share to run as one batch: each
    input's name, dtype and shape beyond the batch axis."""
    return tuple(sorted((name, value.dtype.str, value.shape[1:]) for name, value in inputs.items()))


class _Pending(NamedTuple):
    inputs: dict
    num_rows: int
    future: asyncio.Future
    arrived: float


class _Queue:
    def __init__(self):
        self.items, self.rows = [], 0
        self.dispatcher = None  # the task that will take the next batch
        self.full = asyncio.Event()


class DynamicBatcher:
    """Merges concurrent `predict` calls on the same model and signature.

    As TF Serving's batch scheduler, a batch is formed when a model thread
    is free: while every thread is busy, requests gather in the queue, so
    the busier the server, the larger its batches. A free thread waits at
    most `batch_timeout_micros` after the oldest request for others.

    Args:
        options: `BatchingOptions`.
        run_in_thread: `async (function, *args) -> result`, the server's
            thread pool (model calls block).
        num_threads: Batches that may run at once.

    Example (a stand-in model that doubles its input):

    >>> import asyncio
    >>> from keras_attention.serving.exported_model import SignatureInfo, TensorInfo
    >>> class Doubler:
    ...     metadata = {}
    ...     def signature(self, name):   # x and y are [batch, 3]
    ...         spec = TensorInfo(np.dtype("float32"), "DT_FLOAT", (None, 3))
    ...         return SignatureInfo("serving_default", {"x": spec}, {"y": spec})
    ...     def predict(self, name, inputs):
    ...         return {"y": 2 * inputs["x"]}
    >>> async def run_in_thread(function, *args):   # the server runs it in a thread pool
    ...     return function(*args)
    >>> async def two_requests(batcher, model):   # of 1 row and 2 rows, at once
    ...     return await asyncio.gather(
    ...         batcher.predict(model, "serving_default", {"x": np.ones((1, 3), "float32")}, 1),
    ...         batcher.predict(model, "serving_default", {"x": np.zeros((2, 3), "float32")}, 2))
    >>> batcher = DynamicBatcher(BatchingOptions(max_batch_size=32), run_in_thread)
    >>> first, second = asyncio.run(two_requests(batcher, Doubler()))
    >>> first["y"].tolist(), second["y"].shape
    ([[2.0, 2.0, 2.0]], (2, 3))
    >>> batcher.batch_sizes   # rows of each model call: one call for both requests
    [3]
    """

    def __init__(self, options, run_in_thread, num_threads=1):
        self.options = options
        self.run_in_thread = run_in_thread
        self.num_threads = int(num_threads)
        self._queues = {}
        self._slots = None  # asyncio.Semaphore, made in the running loop
        self.batch_sizes = []  # rows of each model call, for tests and metrics
        self.on_batch = None  # optional callback(rows) for metrics

    async def predict(self, model, signature_name, inputs, num_rows):
        """Runs `model.predict(signature_name, inputs)`, merged with others
        when that cannot change the answer."""
        layouts = model.__dict__.setdefault("_batch_layouts", {})  # dies with the model
        if signature_name not in layouts:
            layouts[signature_name] = batch_layout(model, signature_name)
        layout = layouts[signature_name]
        if layout is None or num_rows >= self.options.max_batch_size:
            return await self._run(model, signature_name, inputs, num_rows)
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.num_threads)
        key = (id(model), signature_name, merge_key(inputs))
        queue = self._queues.setdefault(key, _Queue())
        pending = _Pending(inputs, num_rows, loop.create_future(), loop.time())
        queue.items.append(pending)
        queue.rows += num_rows
        if queue.rows >= self.options.max_batch_size:
            queue.full.set()
        if queue.dispatcher is None:
            queue.dispatcher = asyncio.ensure_future(
                self._dispatch(key, model, signature_name, layout))
        return await pending.future

    async def _dispatch(self, key, model, signature_name, layout):
        queue = self._queues[key]
        async with self._slots:  # a free model thread first
            delay = queue.items[0].arrived + self.options.batch_timeout_micros / 1e6 \
                - asyncio.get_running_loop().time()
            if delay > 0 and not queue.full.is_set():
                try:
                    await asyncio.wait_for(queue.full.wait(), delay)
                except asyncio.TimeoutError:
                    pass
            batch, rows = [], 0
            while queue.items and (not batch or rows + queue.items[0].num_rows
                                   <= self.options.max_batch_size):
                item = queue.items.pop(0)
                batch.append(item)
                rows += item.num_rows
            queue.rows -= rows
            queue.full.clear()
            if queue.rows >= self.options.max_batch_size:
                queue.full.set()
            queue.dispatcher = None
            if queue.items:  # the next batch waits for the next free thread
                queue.dispatcher = asyncio.ensure_future(
                    self._dispatch(key, model, signature_name, layout))
            else:
                del self._queues[key]
            await self._run_batch(model, signature_name, layout, batch, rows)

    async def _run(self, model, signature_name, inputs, num_rows):
        self._record(num_rows)
        return await self.run_in_thread(model.predict, signature_name, inputs)

    async def _run_batch(self, model, signature_name, layout, batch, rows):
        if len(batch) == 1:
            item = batch[0]
            await self._settle(item, self._run(model, signature_name, item.inputs, item.num_rows))
            return
        merged = {name: np.concatenate([item.inputs[name] for item in batch])
                  for name in batch[0].inputs}
        try:
            outputs = await self._run(model, signature_name, merged, rows)
        except Exception:
            # Someone's input broke the batch: run each alone, so only it fails.
            for item in batch:
                await self._settle(item, self._run(model, signature_name, item.inputs,
                                                   item.num_rows))
            return
        start = 0
        for item in batch:
            if not item.future.done():
                item.future.set_result(cut_rows(outputs, start, start + item.num_rows, layout))
            start += item.num_rows

    @staticmethod
    async def _settle(item, awaitable):
        try:
            result = await awaitable
        except Exception as error:
            if not item.future.done():
                item.future.set_exception(error)
            return
        if not item.future.done():
            item.future.set_result(result)

    def _record(self, rows):
        self.batch_sizes.append(rows)
        del self.batch_sizes[:-10000]
        if self.on_batch is not None:
            self.on_batch(rows)
