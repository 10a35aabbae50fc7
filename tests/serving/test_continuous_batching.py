"""Continuous batching in process: concurrent requests of mixed lengths,
greedy and beam, join and leave one running batch, and each answer equals
the export's whole-sequence signature on that request alone (every task,
every input variant); streams give each token as decoded, then the answer;
a closed stream frees its rows."""

import asyncio

import numpy as np
import pytest
from serving_exports import gif_bytes, png_bytes

from keras_attention.serving.continuous_batching import ContinuousBatcher, ContinuousOptions
from keras_attention.serving.exported_model import ExportedModel

pytestmark = pytest.mark.slow

SENTENCES = ["the red dog", "", "a cat sees the green dog runs . the cat", "dog",
             "the the the", "green dog sees a cat", "cat"]


async def in_thread(function, *args):
    return await asyncio.to_thread(function, *args)


def text_rows(values):
    return {"source_text": np.array([v.encode() for v in values], object)}


def assert_same_outputs(got, want, where):
    """Words and ids exactly; floats to 1e-5 (a batch's size may change the
    last bits of a float32 matmul)."""
    assert set(got) == set(want), where
    for name, value in want.items():
        assert got[name].shape == value.shape, (where, name, got[name].shape, value.shape)
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{where} {name}")
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=f"{where} {name}")


def run_concurrently(model, requests, max_batch_size, steps_per_call=4, batcher=None):
    """`requests`: (signature, inputs, rows) all sent at once. Returns the
    answers and the rows of each decoding step."""
    batcher = batcher or ContinuousBatcher(ContinuousOptions(max_batch_size, steps_per_call),
                                           in_thread)
    step_rows = []
    batcher.on_step = step_rows.append

    async def main():
        return await asyncio.gather(*[batcher.predict(model, signature, inputs, rows)
                                      for signature, inputs, rows in requests])

    answers = asyncio.run(main())
    assert batcher.rows_in_flight == 0 and not batcher._engines
    return answers, step_rows


def check_requests(model, requests, max_batch_size=6, steps_per_call=4, batcher=None):
    answers, step_rows = run_concurrently(model, requests, max_batch_size, steps_per_call,
                                          batcher)
    alone_steps = 0
    for (signature, inputs, _), answer in zip(requests, answers):
        want = model.predict(signature, inputs)
        assert_same_outputs(answer, want, f"{signature} {inputs}")
        alone_steps += int(np.max(want["length"], initial=0)) + 1
    assert max(step_rows) <= max_batch_size
    return step_rows, alone_steps


def test_translation_requests_join_and_leave_the_running_batch(translator_dir):
    model = ExportedModel(translator_dir)
    requests = [(signature, text_rows([sentence]), 1)
                for sentence in SENTENCES for signature in ("serving_default", "beam_search")]
    requests += [("serving_default", text_rows(SENTENCES[:4]), 4),
                 ("beam_search", text_rows(["", "dog"]), 2),
                 ("serving_default", text_rows(["", ""]), 2)]
    step_rows, alone_steps = check_requests(model, requests)
    # Requests shared steps: fewer steps than run alone, several in a step.
    assert len(step_rows) < 0.75 * alone_steps
    assert max(step_rows) == 6


@pytest.mark.parametrize("steps_per_call", [1, 3, 8])
def test_greedy_requests_share_calls_of_several_steps(translator_dir, steps_per_call):
    """Greedy requests alone in the batch: up to `steps_per_call` steps a
    model call (never past a row's length limit: the untrained model talks
    on to it), each answer still the whole-sequence signature's."""
    model = ExportedModel(translator_dir)
    requests = [("serving_default", text_rows([sentence]), 1) for sentence in SENTENCES]
    requests.append(("serving_default", text_rows(SENTENCES[2:5]), 3))
    batcher = ContinuousBatcher(ContinuousOptions(5, steps_per_call), in_thread)
    step_rows, alone_steps = check_requests(model, requests, 5, batcher=batcher)
    assert batcher.steps == len(step_rows) < alone_steps
    if steps_per_call == 1:
        assert batcher.model_calls == batcher.steps
        return
    assert batcher.model_calls < 0.6 * batcher.steps  # most calls ran several steps
    # One request after another (the batch empties between them): the
    # several-step function is traced once for the model, not per batch.
    for sentence in (SENTENCES[0], SENTENCES[3]):
        check_requests(model, [("serving_default", text_rows([sentence]), 1)], 5,
                       batcher=batcher)
    assert batcher.greedy_steps(model)._function.experimental_get_tracing_count() == 1


def test_greedy_steps_equal_one_step_at_a_time(translator_dir):
    """`GreedySteps` against `decode_step` called step by step with
    `GreedyRows.advance` (the numpy search): the same ids, scores,
    attention and final state, a row that has already ended included."""
    import tensorflow as tf

    from keras_attention.serving.greedy_rows import GreedyRows
    from keras_attention.serving.greedy_steps import GreedySteps

    model = ExportedModel(translator_dir)
    step = model.metadata["step_signatures"]["decode_step"]
    encoded = model.predict("encode", text_rows(SENTENCES[:4]))
    inputs = {name: tf.constant(encoded[name]) for name in step["state"] + step["constants"]}
    tokens = {name: int(step[name]) for name in ("start_token", "end_token", "pad_token")}

    def search():
        rows = GreedyRows(20, rows=4, **tokens)
        rows.finished[1] = True  # ended before these steps
        return rows

    stepped, state = search(), dict(inputs)
    for _ in range(5):
        out = model.function("decode_step")(tokens=tf.constant(stepped.tokens()), **state)
        stepped.advance(out["log_probs"].numpy(), out["attention"].numpy())
        state.update({name: out[name] for name in step["state"]})

    together = search()
    ids, log_probs, attention, last_state = GreedySteps.of_model(model)(
        together.tokens(), together.finished, inputs, 5)
    assert ids.shape == log_probs.shape == (4, 5) and attention.shape[:2] == (4, 5)
    for index in range(5):
        together.advance_chosen(ids[:, index], log_probs[:, index], attention[:, index])
    np.testing.assert_array_equal(together.ids(), stepped.ids())
    assert together.ids()[1].tolist() == [tokens["pad_token"]] * 5
    np.testing.assert_array_equal(together.result_lengths(), stepped.result_lengths())
    np.testing.assert_allclose(together.result_scores(), stepped.result_scores(), rtol=1e-6)
    np.testing.assert_allclose(together.attention(), stepped.attention(), atol=1e-6)
    for name in step["state"]:
        np.testing.assert_allclose(last_state[name].numpy(), state[name].numpy(), atol=1e-6,
                                   err_msg=name)


def test_captioning_requests_give_their_own_answers(captioner_dir):
    model = ExportedModel(captioner_dir)
    requests = [(signature, {"image_bytes": np.array([png_bytes(seed)], object)}, 1)
                for seed in range(4) for signature in ("serving_default", "beam_search")]
    requests.append(("beam_search", {"image_bytes": np.array(
        [png_bytes(5), png_bytes(6, size=(40, 12))], object)}, 2))
    check_requests(model, requests, max_batch_size=5)
    # Greedy alone: several steps a call.
    batcher = ContinuousBatcher(ContinuousOptions(5, 3), in_thread)
    check_requests(model, [request for request in requests if request[0] == "serving_default"],
                   5, batcher=batcher)
    assert batcher.model_calls < batcher.steps


def test_video_requests_of_every_input_kind_share_the_batch(video_captioner_dir):
    model = ExportedModel(video_captioner_dir)
    rng = np.random.default_rng(3)
    dim = model.metadata["feature_dim"]
    requests = []
    for frames in (2, 5):
        clip = rng.integers(0, 256, (1, frames, 16, 16, 3), np.uint8)
        features = rng.normal(size=(1, frames, dim)).astype("float32")
        lengths = np.array([frames], "int32")
        for greedy, beam, inputs in (
                ("serving_default", "beam_search", {"frames": clip, "lengths": lengths}),
                ("gif_greedy", "gif_beam",
                 {"video_bytes": np.array([gif_bytes(frames, frames=frames)], object)}),
                ("features_greedy", "features_beam",
                 {"features": features, "lengths": lengths})):
            requests += [(greedy, inputs, 1), (beam, inputs, 1)]
    check_requests(model, requests, max_batch_size=8)
    # Greedy alone, every input kind in one batch: several steps a call.
    batcher = ContinuousBatcher(ContinuousOptions(8, 3), in_thread)
    check_requests(model, requests[::2], 8, batcher=batcher)
    assert batcher.model_calls < batcher.steps


def test_a_stream_gives_each_token_then_the_answer(translator_dir):
    model = ExportedModel(translator_dir)
    inputs = text_rows(["dog"])
    want = model.predict("serving_default", inputs)
    assert want["length"][0] > 3  # the untrained model talks on to the row's limit

    async def main():
        batcher = ContinuousBatcher(ContinuousOptions(4), in_thread)
        others = [asyncio.ensure_future(batcher.predict(model, "beam_search",
                                                        text_rows([s]), 1))
                  for s in SENTENCES]
        events = [event async for event in batcher.stream(model, "serving_default", inputs)]
        await asyncio.gather(*others)
        return events

    events = asyncio.run(main())
    tokens, answer = events[:-1], events[-1]["outputs"]
    assert_same_outputs(answer, want, "stream")
    length = int(want["length"][0])
    assert [event["token"] for event in tokens] == [w.decode() for w in want["tokens"][0]]
    assert [event["id"] for event in tokens] == want["token_ids"][0, :length].tolist()
    np.testing.assert_allclose(np.stack([event["attention"] for event in tokens]),
                               want["attention"][0, :length], atol=1e-6)


def test_a_closed_stream_frees_its_rows_at_the_next_step(translator_dir):
    model = ExportedModel(translator_dir)

    async def main():
        batcher = ContinuousBatcher(ContinuousOptions(8), in_thread)
        step_rows = []
        batcher.on_step = step_rows.append
        stream = batcher.stream(model, "serving_default", text_rows(["dog"]))
        first = await stream.__anext__()
        steps_when_closed = len(step_rows)
        stream.close()
        # A request that joins after it is answered; the closed row is gone.
        answer = await batcher.predict(model, "serving_default", text_rows(["dog"]), 1)
        return first, step_rows, steps_when_closed, answer, batcher

    first, step_rows, closed_at, answer, batcher = asyncio.run(main())
    assert first["id"] == answer["token_ids"][0, 0]
    # After the close, no step ran two rows: the stream's row had left.
    assert closed_at >= 1 and all(rows == 1 for rows in step_rows[closed_at + 1:])
    assert batcher.rows_in_flight == 0


def test_beam_search_is_not_streamed(translator_dir):
    from keras_attention.serving.errors import InvalidArgument

    model = ExportedModel(translator_dir)
    batcher = ContinuousBatcher(ContinuousOptions(4), in_thread)
    with pytest.raises(InvalidArgument, match="beam_search: beam search's words are not "
                                              "final until it ends"):
        batcher.stream(model, "beam_search", text_rows(["dog"]))


class FailingSteps:
    """An export whose `decode_step` fails once, on its `fail_at`-th call."""

    def __init__(self, model, fail_at):
        self.model, self.fail_at, self.calls = model, fail_at, 0
        self.signatures, self.metadata = model.signatures, model.metadata
        self.signature, self.predict = model.signature, model.predict

    def function(self, signature):
        function = self.model.function(signature)
        if signature != "decode_step":
            return function

        def failing(**inputs):
            self.calls += 1
            if self.calls == self.fail_at:
                raise RuntimeError("the step failed")
            return function(**inputs)

        return failing


def test_a_failed_step_fails_its_requests_and_decoding_goes_on(translator_dir):
    model = FailingSteps(ExportedModel(translator_dir), fail_at=2)

    async def main():
        batcher = ContinuousBatcher(ContinuousOptions(8), in_thread)
        failed = await asyncio.gather(
            *[batcher.predict(model, "serving_default", text_rows(["dog"]), 1),
              batcher.predict(model, "beam_search", text_rows(["the the the"]), 1)],
            return_exceptions=True)
        after = await batcher.predict(model, "serving_default", text_rows(["dog"]), 1)
        return failed, after

    failed, after = asyncio.run(main())
    assert [str(error) for error in failed] == ["the step failed"] * 2
    assert_same_outputs(after, model.model.predict("serving_default", text_rows(["dog"])),
                        "after")


class HeldCalls:
    """An export whose calls of a signature wait, once held, until released."""

    def __init__(self, model):
        self.model, self.signatures, self.metadata = model, model.signatures, model.metadata
        self.signature = model.signature
        self.held = {}  # signature -> (entered, release) events

    def hold(self, signature):
        import threading

        self.held[signature] = (threading.Event(), threading.Event())

    async def entered(self, signature):
        assert await asyncio.to_thread(self.held[signature][0].wait, 60), signature

    def release(self, signature):
        self.held.pop(signature)[1].set()

    def _wait(self, signature):
        if signature in self.held:
            entered, release = self.held[signature]
            entered.set()
            assert release.wait(60)

    def predict(self, signature, inputs):
        self._wait(signature)
        return self.model.predict(signature, inputs)

    def function(self, signature):
        function = self.model.function(signature)

        def held(**inputs):
            self._wait(signature)
            return function(**inputs)

        return held


def test_a_stream_closed_while_a_request_joins(translator_dir):
    """The stream leaves before the next step, in which a new request joins:
    the batch keeps the right rows."""
    model = HeldCalls(ExportedModel(translator_dir))

    async def main():
        batcher = ContinuousBatcher(ContinuousOptions(8), in_thread)
        stream = batcher.stream(model, "serving_default", text_rows(["dog"]))
        await stream.__anext__()
        model.hold("encode")
        joining = asyncio.ensure_future(
            batcher.predict(model, "serving_default", text_rows(["the the the"]), 1))
        await model.entered("encode")
        stream.close()  # before the step that the new request joins
        model.release("encode")
        return await joining, batcher

    answer, batcher = asyncio.run(main())
    assert_same_outputs(answer, model.model.predict("serving_default",
                                                    text_rows(["the the the"])), "joined")
    assert batcher.rows_in_flight == 0
