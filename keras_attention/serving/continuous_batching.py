"""Continuous (iteration-level) batching: the server runs the decoding loop
over an export's step-level signatures, and requests join and leave the
running batch at every step (as Orca and vLLM schedule language models).

Whole-call batching (`batching.DynamicBatcher`) merges requests into one
call of a whole-sequence signature, so a merged call decodes until its
longest answer ends. Here the requests waiting between two steps are
encoded (`encode`, in one call when their inputs can be joined), their
rows join the rows already decoding, one `decode_step` call advances them
all, and a request whose rows have ended leaves at once: its answer is
made by `finish` and sent while the others go on. Requests wait for room
when `max_batch_size` rows are decoding (a beam request's row counts K).
While every request in the batch is greedy and none is streamed, one call
runs `steps_per_call` steps inside one graph (`GreedySteps`): the
signature call from Python costs more than a step's arithmetic, and the
batch is then joined and left every few steps.

An answer never changes: each request's search runs on its own rows
(`GreedyRows`, `BeamRows`: the library's search, step by step, in numpy),
its rows' memory is padded along the source axis to the batch's longest
and masked out, `finish` turns its ids into words as the whole-sequence
signature does, and its answer is cut along every growing axis to its own
longest row (the export's `axis_lengths`), as whole-call batching cuts.
A signature is served this way when the export has `finish` and the
metadata names its `encode_signature`; others go the usual way.

`ContinuousBatcher` has an example.
"""

import asyncio
import collections
import time
from typing import NamedTuple

import numpy as np

from keras_attention.export_format import (DECODE_STEP_SIGNATURE, FINISH_SIGNATURE,
                                           cut_to_extents, signature_metadata)
from keras_attention.serving.batching import BatchLayout, batch_layout, merge_key
from keras_attention.serving.beam_rows import BeamRows
from keras_attention.serving.errors import InvalidArgument
from keras_attention.serving.greedy_rows import GreedyRows
from keras_attention.serving.greedy_steps import GreedySteps


class _StepPlan(NamedTuple):
    """How to decode one whole-sequence signature step by step (from the
    export's metadata)."""

    encode: str  # the encode signature taking the same inputs
    beam: dict  # beam_width, num_hypotheses, length_penalty; None for greedy
    state: tuple  # decode_step's state names, in order
    constants: tuple  # its constant names
    source_axis: dict  # constant -> the axis that grows with the source
    tokens: dict  # start_token, end_token, pad_token
    rows: tuple  # encode outputs that `finish` takes
    extras: tuple  # encode outputs that go into the answer as they are
    outputs: tuple  # the whole-sequence signature's output names
    layout: object  # its `batching.BatchLayout`: how to cut a request's answer


def step_plan(model, signature_name):
    """The `_StepPlan` of a signature, or None when it cannot be decoded step
    by step (an export without step-level signatures).

    Example (a SavedModel with no step-level signatures):

    >>> class Plain:
    ...     signatures, metadata = {"serving_default": None}, {}
    >>> step_plan(Plain(), "serving_default") is None
    True
    """
    if not {DECODE_STEP_SIGNATURE, FINISH_SIGNATURE} <= set(model.signatures):
        return None
    info = model.signature(signature_name)
    described = signature_metadata(model.metadata, info.name)
    steps = model.metadata.get("step_signatures", {})
    encode = described.get("encode_signature")
    if encode not in steps or encode not in model.signatures \
            or described.get("decoding") not in ("greedy", "beam"):
        return None
    step = steps[DECODE_STEP_SIGNATURE]
    beam = None
    if described["decoding"] == "beam":
        beam = {key: described[key]
                for key in ("beam_width", "num_hypotheses", "length_penalty")}
    return _StepPlan(encode, beam, tuple(step["state"]), tuple(step["constants"]),
                    dict(step.get("source_axis", {})),
                    {key: int(step[key]) for key in ("start_token", "end_token", "pad_token")},
                    tuple(steps[encode]["rows"]), tuple(steps[encode]["extras"]),
                    tuple(info.outputs), batch_layout(model, info.name) or BatchLayout())


class _Job:
    """One request: its rows' search, model state and memory."""

    def __init__(self, plan, encoded, stream):
        self.plan, self.encoded, self.stream = plan, encoded, stream
        self.future = None  # the request's, set by the engine
        self.cancelled = False
        self.parents = None  # the beam rows' order after the last step; None: kept
        empty = np.asarray(encoded["empty"], bool)
        self.num_rows = len(empty)
        self.keep = np.flatnonzero(~empty)  # rows that decode
        # The memory length of its encode call: attention rows are cut to it.
        self.source_length = next((encoded[name].shape[axis]
                                   for name, axis in plan.source_axis.items()), None)
        width = plan.beam["beam_width"] if plan.beam else 1

        def decoding_rows(value):  # [R, ...] -> [R'*K, ...], the K beams adjacent
            return np.repeat(value[self.keep], width, axis=0)

        # decode_step's state and constants of these rows, until they join the batch.
        self.joining = {name: decoding_rows(encoded[name])
                        for name in plan.state + plan.constants}
        limits = encoded["row_limits"][self.keep] if len(self.keep) else np.ones([1])
        tokens = plan.tokens
        if plan.beam:
            self.search = BeamRows(int(limits.max()), tokens["start_token"],
                                   tokens["end_token"], tokens["pad_token"], len(self.keep),
                                   **plan.beam)
        else:
            self.search = GreedyRows(int(limits.max()), tokens["start_token"],
                                     tokens["end_token"], tokens["pad_token"], len(self.keep))

    @property
    def rows(self):
        return self.search.rows

    @property
    def finished(self):
        return self.cancelled or self.future.cancelled() or self.search.done \
            or not len(self.keep)


class _Engine:
    """The running batch of one model, and its decoding loop.

    The batch's state and constants stay TensorFlow tensors between steps;
    their rows are gathered once a step, and only when a request left or a
    beam reordered its rows, and joining requests' rows are appended.
    """

    def __init__(self, batcher, model):
        self.batcher, self.model = batcher, model
        self.waiting = collections.deque()  # (plan, inputs, num_rows, stream, future)
        self.running = []  # jobs in the batch's row order
        self.task = None
        # decode_step's state and constants, name -> tensor [rows, ...], of
        # the running jobs but those joining (admitted since the last step).
        self._rows = None
        self._joining = []

    @property
    def rows_in_flight(self):
        return sum(job.rows for job in self.running)

    async def loop(self):
        try:
            while self.waiting or self.running:
                await self._admit()
                if not self.running:
                    continue
                try:
                    await self._step()
                except Exception as error:  # the step failed: every request in it does
                    failed = self.running
                    self.running, self._joining, self._rows = [], [], None
                    for job in failed:
                        if not job.future.done():
                            job.future.set_exception(error)
        finally:
            self.task = None
            if self.batcher._engines.get(id(self.model)) is self:
                del self.batcher._engines[id(self.model)]

    async def _admit(self):
        """Encodes waiting requests while the batch has room: those whose
        inputs can be joined (same signature, same shape beyond the batch
        axis) in one `encode` call."""
        limit = self.batcher.options.max_batch_size
        rows = self.rows_in_flight
        while self.waiting:
            group, key = [], None
            while self.waiting:
                plan, inputs, num_rows, stream, future = self.waiting[0]
                width = plan.beam["beam_width"] if plan.beam else 1
                if (self.running or group) and rows + num_rows * width > limit:
                    break
                if group and (plan.encode, merge_key(inputs)) != key:
                    break
                self.waiting.popleft()
                if not future.cancelled():
                    group.append((plan, inputs, num_rows, stream, future))
                    key, rows = (plan.encode, merge_key(inputs)), rows + num_rows * width
            if not group:
                return
            await self._encode(group)

    async def _encode(self, group):
        """One `encode` call for `group`'s requests (each alone if it fails,
        so only a bad request fails); their jobs join the batch."""
        plan = group[0][0]
        merged = {name: np.concatenate([item[1][name] for item in group])
                  for name in group[0][1]}
        try:
            encoded = await self.batcher.run_in_thread(self.model.predict, plan.encode, merged)
        except Exception as error:
            if len(group) > 1:
                for item in group:
                    await self._encode([item])
            else:
                group[0][4].set_exception(error)
            return
        start, empty = 0, []
        for plan, _, num_rows, stream, future in group:
            rows = {name: value[start:start + num_rows] for name, value in encoded.items()}
            start += num_rows
            job = _Job(plan, rows, stream)
            job.future = future  # before `finished` is asked
            if job.finished:  # nothing to decode (every row empty)
                empty.append(job)
            else:
                self.running.append(job)
                self._joining.append(job)
        if empty:
            await self._answer(empty)

    def _keep_rows(self, order):
        """Keeps the batch's rows `order` (int `[rows']`), in that order."""
        import tensorflow as tf

        rows = int(next(iter(self._rows.values())).shape[0])
        if len(order) == rows and np.array_equal(order, np.arange(rows)):
            return
        index = tf.constant(order, tf.int32)
        self._rows = {name: tf.gather(value, index) for name, value in self._rows.items()}

    def _batch_inputs(self):
        """decode_step's state and constants for the running jobs, as tensors:
        the joining jobs' rows appended, every source axis padded to the
        longest (the padding masked out by `memory_mask`)."""
        import tensorflow as tf

        if self._joining:
            plan = self._joining[0].plan
            incoming = {}
            for name in plan.state + plan.constants:
                values = [job.joining.pop(name) for job in self._joining]
                axis = plan.source_axis.get(name)
                if axis is not None:
                    held = int(self._rows[name].shape[axis]) if self._rows else 0
                    longest = max([held] + [value.shape[axis] for value in values])
                    values = [_pad_axis(value, axis, longest) for value in values]
                    if self._rows and held < longest:
                        padding = [[0, 0]] * len(self._rows[name].shape)
                        padding[axis] = [0, longest - held]
                        self._rows[name] = tf.pad(self._rows[name], padding)
                incoming[name] = np.concatenate(values)
            self._rows = {name: tf.constant(value) if not self._rows
                          else tf.concat([self._rows[name], value], 0)
                          for name, value in incoming.items()}
            self._joining = []
        return self._rows

    def _call_step(self, tokens, inputs):
        """decode_step on tensors: `(log_probs, attention)` as numpy and the
        new state as tensors."""
        import tensorflow as tf

        outputs = self.model.function(DECODE_STEP_SIGNATURE)(tokens=tf.constant(tokens),
                                                             **inputs)
        state = {name: outputs[name] for name in self.running[0].plan.state}
        return outputs["log_probs"].numpy(), outputs["attention"].numpy(), state

    def _steps_per_call(self, jobs):
        """How many steps the next model call runs: `steps_per_call` inside
        one graph (`GreedySteps`) while every job is greedy and none streams
        (a beam reorders its rows, a stream sends each word, at every step);
        else 1. A job that ends within the call takes pad tokens until the
        call ends, as ended rows do (its answer cuts them off), then leaves."""
        most = self.batcher.options.steps_per_call
        if any(job.plan.beam or job.stream is not None for job in jobs):
            return 1
        return most

    def _greedy_steps(self, tokens, finished, inputs, steps):
        return self.batcher.greedy_steps(self.model)(tokens, finished, inputs, steps)

    @staticmethod
    def _advance(jobs, advance, attention, reorders=False):
        """Advances each job's search by one step: `advance(job, rows,
        attention_rows)` with the job's slice of the batch's rows and its
        attention cut to its own memory; keeps the beams' reordering
        (`job.parents`) when `reorders`. (A greedy job that ended earlier in
        a call of several steps takes pad tokens, which its answer cuts off.)"""
        start = 0
        for job in jobs:
            stop = start + job.rows
            rows = attention[start:stop]
            if job.source_length is not None:
                rows = rows[:, :job.source_length]
            parents = advance(job, slice(start, stop), rows)
            if reorders:
                job.parents = parents
            start = stop

    def _leave(self, jobs):
        """Takes `jobs` out of the batch (their rows too, once joined)."""
        joined = [job for job in self.running if job not in self._joining]
        order, start = [], 0
        for job in joined:
            if job not in jobs:
                order.append(np.arange(start, start + job.rows))
            start += job.rows
        self.running = [job for job in self.running if job not in jobs]
        self._joining = [job for job in self._joining if job not in jobs]
        if order:
            self._keep_rows(np.concatenate(order))
        else:
            self._rows = None

    async def _step(self):
        gone = [job for job in self.running if job.finished]  # closed streams
        if gone:
            self._leave(gone)
            await self._answer(gone)
            if not self.running:
                return
        jobs = list(self.running)
        inputs = self._batch_inputs()
        tokens = np.concatenate([job.search.tokens() for job in jobs])
        steps = self._steps_per_call(jobs)
        if steps > 1:
            finished_rows = np.concatenate([job.search.finished for job in jobs])
            ids, chosen_log_probs, attention, state = await self.batcher.run_in_thread(
                self._greedy_steps, tokens, finished_rows, inputs, steps)
            for step in range(steps):
                self.batcher.record_step(len(tokens))
                self._advance(jobs, lambda job, rows, attention_rows: job.search.advance_chosen(
                    ids[rows, step], chosen_log_probs[rows, step], attention_rows),
                    attention[:, step])
        else:
            self.batcher.record_step(len(tokens))
            log_probs, attention, state = await self.batcher.run_in_thread(
                self._call_step, tokens, inputs)
            self._advance(jobs, lambda job, rows, attention_rows: job.search.advance(
                log_probs[rows], attention_rows), attention, reorders=True)
        self.batcher.model_calls += 1
        self._rows.update(state)
        start, finished, order = 0, [], []
        for job in jobs:
            stop = start + job.rows
            if job.finished:
                finished.append(job)
            else:
                parents = job.parents
                order.append(start + (np.arange(job.rows) if parents is None else parents))
            start = stop
        if finished:
            self.running = [job for job in self.running if job not in finished]
        if order:
            self._keep_rows(np.concatenate(order))
        else:
            self._rows = None
        streams = [job for job in jobs if job.stream is not None and not job.cancelled
                   and not job.future.cancelled()]
        if streams:
            await self._stream_tokens(streams)
        if finished:
            await self._answer(finished)

    async def _stream_tokens(self, jobs):
        """Sends each streamed job's new token, its word made by `finish` on
        the search so far (one call for all of them)."""
        emitted = []
        for job in jobs:
            token = int(job.search.last_tokens()[0])
            if not (job.search.finished[0] and token in (job.plan.tokens["end_token"],
                                                         job.plan.tokens["pad_token"])):
                emitted.append((job, token))
        if not emitted:
            return
        answers = await self.batcher.run_in_thread(self._finish_outputs,
                                                   [job for job, _ in emitted])
        for (job, token), partial in zip(emitted, answers):
            steps = int(partial["length"][0])
            job.stream.put_nowait({"token": partial["tokens"][0, steps - 1].decode("utf-8"),
                                   "id": token,
                                   "attention": partial["attention"][0, steps - 1]})

    async def _answer(self, jobs):
        """Answers the jobs that left the batch (one `finish` call)."""
        live = []
        for job in jobs:
            if job.cancelled or job.future.cancelled():
                if not job.future.done():
                    job.future.cancel()
            else:
                live.append(job)
        if not live:
            return
        try:
            answers = await self.batcher.run_in_thread(self._finish_outputs, live)
        except Exception as error:
            if len(live) > 1:  # each alone, so only the bad one fails
                for job in live:
                    await self._answer([job])
            elif not live[0].future.done():
                live[0].future.set_exception(error)
            return
        for job, outputs in zip(live, answers):
            if not job.future.done():
                job.future.set_result(outputs)

    def _finish_outputs(self, jobs):
        """One `finish` call on the jobs' rows (each search so far): for each
        job, the answer of the whole-sequence signature on its request alone."""
        parts = [self._finish_inputs(job) for job in jobs]
        # Joined: every axis past the rows padded to the longest (the
        # padding is cut off again below).
        merged = {}
        for name in parts[0]:
            values = [part[name] for part in parts]
            for axis in range(1, values[0].ndim):
                longest = max(value.shape[axis] for value in values)
                values = [_pad_axis(value, axis, longest) for value in values]
            merged[name] = np.concatenate(values)
        outputs = self.model.predict(FINISH_SIGNATURE, merged)
        answers, start = [], 0
        for job, part in zip(jobs, parts):
            rows = len(part["length"])
            answer = {name: value[start:start + rows] for name, value in outputs.items()}
            start += rows
            answer["score"] = part["score"]
            plan = job.plan  # greedy and beam requests finish together
            if plan.beam:  # [R*N, ...] -> [R, N, ...]
                answer = {name: value.reshape(job.num_rows, job.search.hypotheses,
                                              *value.shape[1:])
                          for name, value in answer.items()}
            answer.update({name: job.encoded[name] for name in plan.extras})
            answers.append(self._cut(plan, {name: answer[name] for name in plan.outputs}))
        return answers

    @staticmethod
    def _finish_inputs(job):
        """`finish`'s inputs for one job, and its scores (`score`)."""
        plan, search, encoded = job.plan, job.search, job.encoded
        n = search.hypotheses
        rows = job.num_rows * n
        keep = (job.keep[:, None] * n + np.arange(n)).reshape(-1)  # rows of the kept hypotheses
        source = job.source_length if job.source_length is not None else \
            search.attention().shape[-1] if search.steps else 1
        steps = search.steps if len(job.keep) else 0
        ids = np.full([rows, steps], plan.tokens["pad_token"], np.int32)
        lengths = np.zeros([rows], np.int32)
        scores = np.zeros([rows], np.float32)
        attention = np.zeros([rows, steps, source], np.float32)
        if len(job.keep) and steps:
            ids[keep], lengths[keep] = search.ids(), search.result_lengths()
            scores[keep], attention[keep] = search.result_scores(), search.attention()
        return {"token_ids": ids, "length": lengths, "attention": attention, "score": scores,
                **{name: np.repeat(encoded[name], n, axis=0) for name in plan.rows}}

    @staticmethod
    def _cut(plan, outputs):
        """A request's answer cut along every growing axis to its own longest
        row (the export's `axis_lengths`), as a whole-call batch is cut: its
        rows were encoded and finished with others, padded to theirs."""
        extents = {axis: int(outputs[name].max()) if outputs[name].size else 0
                   for axis, name in plan.layout.lengths.items()}
        # The attention is over the memory, which keeps one position when
        # every row is empty.
        over_memory = {axis: max(extent, 1) for axis, extent in extents.items()
                       if plan.layout.lengths[axis] != "length"}
        axes = plan.layout.axes or {}
        cut = cut_to_extents(outputs, axes, extents)
        cut.update(cut_to_extents({"attention": outputs["attention"]}, axes,
                                  {**extents, **over_memory}))
        return cut


def _pad_axis(value, axis, length):
    """`value` padded at the end of `axis` to `length` (zeros, False, b"")."""
    if value.shape[axis] == length:
        return value
    padding = [(0, 0)] * value.ndim
    padding[axis] = (0, length - value.shape[axis])
    return np.pad(value, padding, constant_values=b"" if value.dtype == object else 0)


class ContinuousOptions(NamedTuple):
    """max_batch_size: Most rows decoding at once (a beam request's row
    counts `beam_width`); a request waits while the batch is full.
    steps_per_call: Most greedy steps one model call runs (`GreedySteps`)
    while no beam search and no stream is in the batch; requests join and
    leave between calls. 1: every step is a call of `decode_step`."""

    max_batch_size: int = 32
    steps_per_call: int = 4


class ContinuousBatcher:
    """Decodes requests step by step in one running batch per model.

    Args:
        options: `ContinuousOptions`.
        run_in_thread: `async (function, *args) -> result`, the server's
            thread pool (model calls block).

    Example (any export with step-level signatures; answers equal the
    signature's own):

        batcher = ContinuousBatcher(ContinuousOptions(max_batch_size=32), run_in_thread)
        if batcher.serves(model, "serving_default"):
            outputs = await batcher.predict(model, "serving_default", inputs, num_rows)
            async for event in batcher.stream(model, "serving_default", inputs):
                ...   # {"token", "id", "attention"} per token, then {"outputs"}
    """

    def __init__(self, options, run_in_thread):
        self.options = options
        self.run_in_thread = run_in_thread
        self._engines = {}
        self.steps = 0  # decoding steps run, for metrics
        self.model_calls = 0  # decoding calls (of one step or several)
        self.step_times = collections.deque(maxlen=4096)  # monotonic time of recent steps
        self.on_step = None  # optional callback(rows) for metrics

    def plan(self, model, signature_name):
        """The signature's `_StepPlan`, or None when it is not decoded here."""
        plans = model.__dict__.setdefault("_step_plans", {})  # dies with the model
        if signature_name not in plans:
            plans[signature_name] = step_plan(model, signature_name)
        return plans[signature_name]

    def greedy_steps(self, model):
        """The model's `GreedySteps`, made (and traced) once: an engine ends
        whenever the batch empties."""
        if "_greedy_steps" not in model.__dict__:  # dies with the model
            model.__dict__["_greedy_steps"] = GreedySteps.of_model(model, DECODE_STEP_SIGNATURE)
        return model.__dict__["_greedy_steps"]

    def serves(self, model, signature_name):
        return self.plan(model, signature_name) is not None

    @property
    def rows_in_flight(self):
        return sum(engine.rows_in_flight for engine in self._engines.values())

    def steps_per_second(self, window=5.0):
        """Decoding steps over the last `window` seconds, per second."""
        now = time.monotonic()
        return sum(1 for moment in self.step_times if now - moment <= window) / window

    def record_step(self, rows):
        self.steps += 1
        self.step_times.append(time.monotonic())
        if self.on_step is not None:
            self.on_step(rows)

    def _submit(self, model, signature_name, inputs, num_rows, stream):
        plan = self.plan(model, signature_name)
        if plan is None:
            raise InvalidArgument(f"{signature_name}: this model has no step-level signatures "
                                  "to decode it step by step (export it again)")
        engine = self._engines.get(id(model))
        if engine is None or engine.model is not model:
            engine = self._engines[id(model)] = _Engine(self, model)
        future = asyncio.get_running_loop().create_future()
        engine.waiting.append((plan, inputs, num_rows, stream, future))
        if engine.task is None:
            engine.task = asyncio.ensure_future(engine.loop())
        return engine, future

    async def predict(self, model, signature_name, inputs, num_rows):
        """The signature's outputs for `inputs` (name -> `[num_rows, ...]`),
        decoded in the running batch."""
        _, future = self._submit(model, signature_name, inputs, num_rows, None)
        return await future

    def stream(self, model, signature_name, inputs):
        """A `_TokenStream` of one row (`inputs`: name -> `[1, ...]`): an
        async iterator of `{"token", "id", "attention"}` for each output
        token as it is decoded, then `{"outputs": ...}`, the signature's
        answer. `close()` frees the row at the next step."""
        plan = self.plan(model, signature_name)
        if plan is not None and plan.beam:
            raise InvalidArgument(f"{signature_name}: beam search's words are not final "
                                  "until it ends; stream a greedy signature")
        queue = asyncio.Queue()
        engine, future = self._submit(model, signature_name, inputs, 1, queue)
        future.add_done_callback(lambda _: queue.put_nowait(None))
        return _TokenStream(engine, future, queue)


class _TokenStream:
    """The events of one streamed request (`ContinuousBatcher.stream`)."""

    def __init__(self, engine, future, queue):
        self._engine, self._future, self._queue = engine, future, queue
        self._ended = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._ended:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is not None:
            return event
        self._ended = True
        return {"outputs": self._future.result()}  # raises the request's error

    def close(self):
        """Stops decoding the row (at the next step) unless it has ended."""
        if self._future.done():
            return
        for job in self._engine.running:
            if job.future is self._future:
                job.cancelled = True
        self._future.cancel()
