"""The export every task shares: a SavedModel that TensorFlow Serving, KServe
and our own server run without this package.

Layout: `<export_dir>/<name>/<version>/` (TF Serving's), written under a
temporary name and renamed, so a server never sees a half-written version.

Signatures (the input is the task's, see its exporter):

- `serving_default`, greedy: `text [B]` string, `tokens [B, T]` string,
  `token_ids [B, T]` int32, `length [B]` int32, `score [B]` float32 (the
  log-probability), `attention [B, T, ...]` float32.
- `beam_search`, beam width and n-best fixed at export: the same names with
  a hypothesis axis N after B, best first; `score [B, N]` is the GNMT score.

A task may declare several named inputs and more ways to feed the model
(`SequenceExporter.input_variants`: video takes `frames` + `lengths` in
`serving_default` and `beam_search`, and animated GIFs in `gif_greedy` and
`gif_beam`); each variant has a greedy and a beam signature with the same
outputs.

A task may add outputs (translation: `source_tokens`). T is the longest
output in the batch; each row's answer depends on that row alone (its
length limit included), so batching requests never changes an answer.
Step-level signatures let a client run the search one step at a time:
`encode` (each variant may name one; the first variant's is `encode`)
returns the search's initial state and constants, `decode_step` one step's
log-probabilities, attention and new state, and `finish` turns a finished
search's token ids into the answer's words, text and attention
(`step_signatures()`).

`assets.extra/metadata.json` describes all of it for servers and the CLI:
each output's axes by name (`output_axes`), and for each axis that grows
with the batch's longest row, the output holding each row's extent
(`axis_lengths`), so a server that batches requests can cut every answer
back to what the request alone would have got.
"""

import contextlib
import json
import os
import shutil
from typing import Callable, NamedTuple, Optional

import tensorflow as tf

from keras_attention import decoding
from keras_attention.export_format import (
    BEAM_SIGNATURE,
    DECODE_STEP_SIGNATURE,
    ENCODE_SIGNATURE,
    FINISH_SIGNATURE,
    GREEDY_SIGNATURE,
    METADATA_FORMAT,
    METADATA_PATH,
    read_metadata,
)
from training.core.decoding_options import DecodingOptions
from training.core.text import END_ID, PAD_ID, START_ID, detokenize_words



class InputVariant(NamedTuple):
    """One way to feed an exported model: its signatures, named inputs and
    how they become the model's source.

    Attributes:
        greedy_signature, beam_signature: The signature keys of its greedy
            and beam decoding (the first variant's are `serving_default` and
            `beam_search`).
        specs: Input name -> `tf.TensorSpec`, in the order `prepare` takes
            them; each name is the signature's input name.
        kinds: Input name -> what it holds, for metadata.json ("text",
            "image", "frames", "length" ...).
        prepare: `(*inputs) -> (source, max_lengths, rows, extras)`, as
            `SequenceExporter.prepare`; None: `SequenceExporter.prepare` on
            the one input (the exporters with a single input).
        description: Optional words for metadata.json.
        encode_signature: The key of its step-level `encode` signature
            (the first variant's: `encode`, its default); None: no step
            signature for this variant.

    Example (video's GIF input):

        InputVariant("gif_greedy", "gif_beam",
                     {"video_bytes": tf.TensorSpec([None], tf.string, name="video_bytes")},
                     {"video_bytes": "video"}, prepare=self.prepare_gif)
    """

    greedy_signature: str
    beam_signature: str
    specs: dict
    kinds: dict
    prepare: Optional[Callable] = None
    description: Optional[str] = None
    encode_signature: Optional[str] = None


class _Untracked:
    """Holds a value out of `tf.Module`'s tracking."""

    def __init__(self, value):
        self.value = value


class SequenceExporter(tf.Module):
    """Base of every task's exporter: decoding, output schema, metadata, save.

    A task subclasses it and sets `task`, `input_name`, `input_kind` and
    `attention_axes`, and implements `input_spec()` and `prepare()`; it may
    override `replace_words()`, `join_words()`, `format_attention()` and
    `metadata_extras()`.
    A task with several named inputs, or more than one way to feed the
    model, overrides `input_variants()` instead of `input_spec()` and
    `prepare()`: one `InputVariant` per pair of signatures.

    Args:
        model: A trained `AttentionSeq2Seq`.
        target_vocabulary: The output `Vocabulary`.
        max_output_tokens: Most output words (the end token aside).
        decoding: `DecodingOptions` (beam width, hypotheses, length penalty,
            n-gram blocking), applied by every signature and written to the
            metadata.
        recaser: Optional `training.core.recasing.Recaser` for the output
            words (`tokens` and `text`).
    """

    task = None
    input_name = None
    input_kind = None
    attention_axes = ()  # the axes after [batch, (hypothesis,) output_token]
    extra_output_axes = {}  # extra output -> its axes after [batch, (hypothesis,)]
    axis_lengths = {}  # axis -> the output (`[B]` or `[B, N]`) of each row's extent

    def __init__(self, model, target_vocabulary, max_output_tokens,
                 decoding=DecodingOptions(), name=None, recaser=None):
        super().__init__(name=name or self.task)
        if not isinstance(decoding, DecodingOptions):
            raise TypeError(f"decoding: a DecodingOptions, received {type(decoding).__name__}")
        # The SavedModel keeps the model's variables, not the Keras object:
        # saving the object graph of every layer (and the functions Keras
        # adds to it) took as long as tracing the signatures.
        self._model = _Untracked(model)
        self.model_variables = list(model.variables)
        self.target_vocabulary = target_vocabulary
        self.max_output_tokens = int(max_output_tokens)
        self.decoding = decoding
        self.recaser = recaser
        self.variants = self._checked_variants()
        # Signature key -> tf.function; the first variant's are also
        # `self.greedy` and `self.beam`. Untracked: the SavedModel holds them
        # as signatures (tracked, they were traced a second time to save).
        # autograph=False: decoding loops are keras.ops.while_loop already;
        # converting every Python function on the way halved tracing's speed.
        # Traced once per input structure, called by every signature: the
        # search's start (the encoder's run, the initial state) and step
        # (under the repetition guard and the row limits), shared by the
        # loops and the step-level signatures; and one loop per method,
        # shared by the variants whose prepared batches match (video's
        # frames and GIFs). Each piece is one copy in the SavedModel.
        self._search = _Untracked({
            "start": tf.function(self._search_start, autograph=False, reduce_retracing=True),
            "step": tf.function(self._search_step, autograph=False, reduce_retracing=True)})
        self._decoders = _Untracked({
            "greedy": tf.function(self._decode_greedy, autograph=False, reduce_retracing=True),
            "beam": tf.function(self._decode_beam, autograph=False, reduce_retracing=True)})
        functions = {}
        for variant in self.variants:
            if variant.prepare is None:  # one input through `prepare()`
                specs = list(variant.specs.values())
                greedy = tf.function(self._greedy, input_signature=specs, autograph=False)
                beam = tf.function(self._beam, input_signature=specs, autograph=False)
            else:
                greedy, beam = self._variant_functions(variant)
            functions[variant.greedy_signature] = greedy
            functions[variant.beam_signature] = beam
        self._functions = _Untracked(functions)
        # Step-level signatures: `encode` per variant that names one, and one
        # `decode_step`, whose input specs are the traced encode's outputs.
        self._encoders = _Untracked({
            variant.encode_signature: tf.function(
                self._encode_function(variant), input_signature=list(variant.specs.values()),
                autograph=False)
            for variant in self.variants if variant.encode_signature})
        self._step_layout = _Untracked(None)  # (state, constants) structures, once traced
        self._answer_inputs = _Untracked(None)  # (row names, extra output names), once traced

    @property
    def model(self):
        """The `AttentionSeq2Seq` the signatures decode with."""
        return self._model.value

    # The decoding settings, read from `self.decoding` (one source of truth).
    beam_width = property(lambda self: self.decoding.beam_width)
    num_hypotheses = property(lambda self: self.decoding.num_hypotheses)
    length_penalty = property(lambda self: self.decoding.length_penalty)
    no_repeat_ngram_size = property(lambda self: self.decoding.no_repeat_ngram_size)

    @property
    def signature_functions(self):
        """Signature key -> its `tf.function`."""
        return self._functions.value

    # Methods, not attributes holding the functions: tf.Module lists every
    # attribute that is a tf.function and saves (and traces) it again.
    def greedy(self, *inputs):
        """`serving_default`: greedy decoding of the first input variant's inputs."""
        return self.signature_functions[GREEDY_SIGNATURE](*inputs)

    def beam(self, *inputs):
        """`beam_search`: beam search on the first input variant's inputs."""
        return self.signature_functions[BEAM_SIGNATURE](*inputs)

    # ------------------------------------------------------------ task hooks
    def input_variants(self):
        """The `InputVariant`s, `serving_default`/`beam_search`'s first.

        Default: one variant, the one input `input_name` of `input_spec()`
        through `prepare()`.
        """
        return [InputVariant(GREEDY_SIGNATURE, BEAM_SIGNATURE,
                             {self.input_name: self.input_spec()},
                             {self.input_name: self.input_kind})]

    def input_spec(self):
        """The `tf.TensorSpec` of the signatures' one input (named `input_name`)."""
        raise NotImplementedError

    def prepare(self, inputs):
        """`inputs [B, ...]` -> `(source, max_lengths [B], rows, extras)`.

        `source` is what the model's encoder takes; `max_lengths` each row's
        output limit (end token included, at most `max_output_tokens + 1`);
        `rows` a dict of `[B, ...]` tensors the hooks need per row, with
        `"empty"` (bool `[B]`: the row has nothing to decode, it gets an
        empty answer); `extras` more outputs `[B, ...]`.
        """
        raise NotImplementedError

    def replace_words(self, words, ids, attention, rows):
        """Hook on the output words `[R, T]` (e.g. unknown-word replacement);
        `ids [R, T]`, `attention [R, T, S]`, `rows` as from `prepare`."""
        return words

    def join_words(self, words):
        """Ragged `[R, (T)]` output words -> `[R]` text: words joined by
        spaces, none before closing punctuation (a task whose tokens are
        characters joins them with nothing)."""
        return detokenize_words(words)

    def format_attention(self, attention, rows):
        """`[R, T, S]` -> what the signature returns (e.g. `[R, T, H, W]`)."""
        return attention

    def metadata_extras(self):
        """Task facts for metadata.json (vocabulary sizes, lengths ...)."""
        return {}

    # -------------------------------------------------------------- decoding
    def _checked_variants(self):
        variants = list(self.input_variants())
        if not variants or (variants[0].greedy_signature, variants[0].beam_signature) != (
                GREEDY_SIGNATURE, BEAM_SIGNATURE):
            raise ValueError(f"the first input variant must have the signatures "
                             f"{GREEDY_SIGNATURE} and {BEAM_SIGNATURE}")
        if variants[0].encode_signature is None:
            variants[0] = variants[0]._replace(encode_signature=ENCODE_SIGNATURE)
        keys = [key for v in variants
                for key in (v.greedy_signature, v.beam_signature, v.encode_signature) if key]
        keys.append(DECODE_STEP_SIGNATURE)
        if len(set(keys)) != len(keys):
            raise ValueError(f"input variants repeat a signature name: {keys}")
        for variant in variants:
            if set(variant.kinds) != set(variant.specs):
                raise ValueError(f"{variant.greedy_signature}: kinds {sorted(variant.kinds)} "
                                 f"differ from inputs {sorted(variant.specs)}")
            if variant.prepare is None and len(variant.specs) != 1:
                raise ValueError(f"{variant.greedy_signature}: several inputs need a prepare")
        return tuple(variants)

    def _variant_functions(self, variant):
        """The greedy and beam `tf.function`s of a variant with its own `prepare`."""
        specs = list(variant.specs.values())

        def greedy(*inputs):
            return self._greedy_prepared(variant.prepare(*inputs))

        def beam(*inputs):
            return self._beam_prepared(variant.prepare(*inputs))

        greedy.__name__ = variant.greedy_signature
        beam.__name__ = variant.beam_signature
        return (tf.function(greedy, input_signature=specs, autograph=False),
                tf.function(beam, input_signature=specs, autograph=False))

    def _decode(self, source, max_lengths, method, **options):
        """Decodes `prepare()`'s `source` to each row's `max_lengths [B]`."""
        max_lengths = tf.minimum(tf.cast(max_lengths, tf.int32), self.max_output_tokens + 1)
        # The loop runs to the batch's longest limit; shorter rows end at theirs.
        loop_length = tf.maximum(tf.reduce_max(max_lengths), 1)
        state, constants = self._search.value["start"](source, max_lengths)
        start_tokens = tf.fill(tf.shape(max_lengths), START_ID)
        return decoding.get(method)(
            step_fn=self._search.value["step"], initial_state=state, start_tokens=start_tokens,
            end_token=END_ID, max_length=loop_length, constants=constants, **options)

    def _search_start(self, source, max_lengths):
        """`(state, constants)` of a search on `source` whose rows end at
        `max_lengths [B]` (`AttentionSeq2Seq.search_setup`; the repetition
        guard's history as wide as the longest output allows)."""
        _, state, constants, _ = self.model.search_setup(
            source, END_ID, self.max_output_tokens + 1, max_lengths, self.no_repeat_ngram_size)
        return state, constants

    def _search_step(self, tokens, state, constants):
        """`(logits [B, V], state, attention [B, S])`: one step of the search."""
        step_fn = self.model.search_step(END_ID, self.max_output_tokens + 1, row_limits=True,
                                         no_repeat_ngram_size=self.no_repeat_ngram_size)
        return step_fn(tokens, state, constants)

    def _finish(self, ids, lengths, attention, rows):
        """Words, text and attention of `R` outputs: `ids [R, T]`,
        `lengths [R]`, `attention [R, T, S]`."""
        lengths = tf.where(rows["empty"], 0, lengths)
        longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
        # float32 whatever the model's dtype policy (mixed precision).
        ids, attention = ids[:, :longest], tf.cast(attention[:, :longest], tf.float32)
        valid = tf.sequence_mask(lengths, longest)  # --> [R, T]
        ids = tf.where(valid, ids, PAD_ID)
        words = self.target_vocabulary.words_of(ids)
        if self.recaser is not None:  # before copies from the source, which keep its case
            words = self.recaser.written_forms(words)
        words = tf.where(valid, self.replace_words(words, ids, attention, rows), "")
        if self.recaser is not None:
            words = self.recaser.capitalize_sentence_starts(words)
        text = self.join_words(tf.RaggedTensor.from_tensor(words, lengths=lengths))
        attention = attention * tf.cast(valid, attention.dtype)[..., None]
        return {"text": text, "tokens": words, "token_ids": ids, "length": lengths,
                "attention": self.format_attention(attention, rows)}

    def _greedy(self, inputs):
        return self._greedy_prepared(self.prepare(inputs))

    def _beam(self, inputs):
        return self._beam_prepared(self.prepare(inputs))

    def _greedy_prepared(self, prepared):
        source, max_lengths, rows, extras = prepared
        return {**self._decoders.value["greedy"](source, max_lengths, rows), **extras}

    def _beam_prepared(self, prepared):
        source, max_lengths, rows, extras = prepared
        return {**self._decoders.value["beam"](source, max_lengths, rows), **extras}

    def _decode_greedy(self, source, max_lengths, rows):
        result = self._decode(source, max_lengths, "greedy")
        outputs = self._finish(result.ids, result.lengths, result.attention, rows)
        outputs["score"] = tf.where(rows["empty"], 0.0, tf.cast(result.log_probs, tf.float32))
        return outputs

    def _decode_beam(self, source, max_lengths, rows):
        result = self._decode(
            source, max_lengths, "beam", beam_width=self.beam_width,
            length_penalty=self.length_penalty, num_hypotheses=self.num_hypotheses)
        n = self.num_hypotheses
        batch = tf.shape(result.ids)[0]

        def flat(x):  # [B, N, ...] --> [B*N, ...]
            return tf.reshape(x, tf.concat([[batch * n], tf.shape(x)[2:]], 0))

        def unflat(x):  # [B*N, ...] --> [B, N, ...]
            return tf.reshape(x, tf.concat([[batch, n], tf.shape(x)[1:]], 0))

        repeated_rows = {key: tf.repeat(value, n, axis=0) for key, value in rows.items()}
        outputs = self._finish(flat(result.ids), flat(result.lengths), flat(result.attention),
                               repeated_rows)
        outputs = {key: unflat(value) for key, value in outputs.items()}
        outputs["score"] = tf.where(rows["empty"][:, None], 0.0,
                                    tf.cast(result.scores, tf.float32))
        return outputs

    # ----------------------------------------------------------- step level
    def _encode_function(self, variant):
        """The `encode` function of a variant: its inputs -> the search's
        initial state and constants, flat (`state_<i>`, `STEP_CONSTANTS`),
        the rows `finish` takes (`empty [B]` and the task's) and the task's
        extra outputs (translation's `source_tokens`)."""
        prepare = variant.prepare or self.prepare

        def encode(*inputs):
            source, max_lengths, rows, extras = prepare(*inputs)
            max_lengths = tf.minimum(tf.cast(max_lengths, tf.int32), self.max_output_tokens + 1)
            state, constants = self._search.value["start"](source, max_lengths)
            layout = (tf.nest.map_structure(lambda _: 0, state),
                      tf.nest.map_structure(lambda _: 0, constants))
            if self._step_layout.value not in (None, layout):
                raise ValueError(f"{variant.encode_signature}: another decoding state than "
                                 f"the other encode signatures'")
            self._step_layout.value = layout
            names = (sorted(rows), sorted(extras))
            if self._answer_inputs.value not in (None, names):
                raise ValueError(f"{variant.encode_signature}: other rows or extra outputs "
                                 f"than the other encode signatures'")
            self._answer_inputs.value = names
            # `rows` feed `finish`; `extras` go into the answer as they are.
            return {**self._flat_state(state), **_flat_constants(constants), **rows, **extras}

        encode.__name__ = variant.encode_signature
        return encode

    @staticmethod
    def _flat_state(state):
        return {f"state_{index}": tensor for index, tensor in enumerate(tf.nest.flatten(state))}

    def _decode_step(self, tokens, *flat):
        """One search step on `encode`'s flat state and constants:
        `log_probs [B, V]` (after the repetition guard and the row limits),
        `attention [B, S]` and the new `state_<i>`."""
        state_layout, constants_layout = self._step_layout.value
        count = len(tf.nest.flatten(state_layout))
        state = tf.nest.pack_sequence_as(state_layout, list(flat[:count]))
        constants = tf.nest.pack_sequence_as(constants_layout, list(flat[count:]))
        logits, state, attention = self._search.value["step"](tokens, state, constants)
        return {"log_probs": tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1),
                "attention": tf.cast(attention, tf.float32), **self._flat_state(state)}

    def step_signatures(self):
        """Signature key -> concrete function of `encode` (each variant's that
        has one) and `decode_step`."""
        encodes = {key: function.get_concrete_function()
                   for key, function in self._encoders.value.items()}
        outputs = encodes[ENCODE_SIGNATURE].structured_outputs
        names = [*self._flat_state(self._step_layout.value[0]), *STEP_CONSTANTS]
        specs = [tf.TensorSpec([None], tf.int32, name="tokens")] + [
            tf.TensorSpec(outputs[name].shape, outputs[name].dtype, name=name)
            for name in names]
        step = tf.function(self._decode_step, input_signature=specs, autograph=False)
        row_names = self._answer_inputs.value[0]
        finish_specs = [tf.TensorSpec([None, None], tf.int32, name="token_ids"),
                        tf.TensorSpec([None], tf.int32, name="length"),
                        tf.TensorSpec([None, None, None], tf.float32, name="attention")] + [
            tf.TensorSpec(outputs[name].shape, outputs[name].dtype, name=name)
            for name in row_names]
        finish = tf.function(self._finish_rows, input_signature=finish_specs, autograph=False)
        return {**encodes, DECODE_STEP_SIGNATURE: step.get_concrete_function(),
                FINISH_SIGNATURE: finish.get_concrete_function()}

    def _finish_rows(self, token_ids, length, attention, *rows):
        """`finish`: a search's `token_ids [R, T]`, `length [R]` and
        `attention [R, T, S]` (S: the rows' own memory length) and `encode`'s
        rows -> the answer's `text`, `tokens`, `token_ids`, `length` and
        `attention`, as the whole-sequence signatures give them."""
        rows = dict(zip(self._answer_inputs.value[0], rows))
        return self._finish(token_ids, length, attention, rows)

    def _step_metadata(self, signatures):
        """metadata.json's `step_signatures`."""
        encoders = {variant.encode_signature: variant for variant in self.variants}
        described = {}
        row_names, extra_names = self._answer_inputs.value
        for key, function in signatures.items():
            if key in encoders:
                variant = encoders[key]
                inputs = {name: {**_spec_json(spec), "kind": variant.kinds[name]}
                          for name, spec in variant.specs.items()}
            else:
                inputs = {spec.name: _spec_json(spec)
                          for spec in function.structured_input_signature[0]}
            described[key] = {"inputs": inputs,
                              "outputs": _specs_json(function.structured_outputs)}
            if key in encoders:
                # `rows`: what `finish` takes of them; `extras`: answer outputs.
                described[key].update(rows=row_names, extras=extra_names)
        state = sorted((name for name in described[DECODE_STEP_SIGNATURE]["outputs"]
                        if name.startswith("state_")), key=lambda name: int(name[6:]))
        described[DECODE_STEP_SIGNATURE].update(
            state=state, constants=list(STEP_CONSTANTS), start_token=START_ID,
            end_token=END_ID, pad_token=PAD_ID,
            # Rows of requests with other source lengths join padded along
            # this axis, the padding masked out by `memory_mask`.
            source_axis={"memory": 1, "memory_mask": 1, "projected_keys": 1})
        return described

    # ------------------------------------------------------------------ save
    def signatures(self):
        """Signature key -> concrete function: the whole-sequence signatures,
        then the step-level ones."""
        whole = {key: function.get_concrete_function()
                 for key, function in self.signature_functions.items()}
        return {**whole, **self.step_signatures()}

    def _beam_signatures(self):
        return {variant.beam_signature for variant in self.variants}

    def metadata(self, signatures):
        """What a server or the CLI needs to know, as a JSON-able dict."""
        from keras_attention import __version__

        described = {}
        variant_of = {key: variant for variant in self.variants
                      for key in (variant.greedy_signature, variant.beam_signature)}
        for key, function in signatures.items():
            if key not in variant_of:  # a step-level signature
                continue
            outputs = function.structured_outputs
            variant = variant_of[key]
            described[key] = {
                "decoding": "beam" if key in self._beam_signatures() else "greedy",
                "inputs": {name: {**_spec_json(spec), "kind": variant.kinds[name]}
                           for name, spec in variant.specs.items()},
                "outputs": {name: _spec_json(outputs[name]) for name in sorted(outputs)},
                "attention_axes": self._output_axes(key)["attention"],
                "output_axes": self._output_axes(key),
                "axis_lengths": {"output_token": "length", **self.axis_lengths},
            }
            if variant.description:
                described[key]["description"] = variant.description
            if variant.encode_signature:  # the same inputs, decoded step by step
                described[key]["encode_signature"] = variant.encode_signature
        for key in self._beam_signatures():
            described[key].update(beam_width=self.beam_width,
                                  num_hypotheses=self.num_hypotheses,
                                  length_penalty=self.length_penalty)
        return {
            "format_version": METADATA_FORMAT,
            "task": self.task,
            "package_version": __version__,
            "default_signature": GREEDY_SIGNATURE,
            "signatures": described,
            "step_signatures": self._step_metadata(
                {key: function for key, function in signatures.items()
                 if key not in variant_of}),
            "target_vocabulary_size": self.target_vocabulary.size,
            "max_output_tokens": self.max_output_tokens,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "recased_output": self.recaser is not None,
            **self.metadata_extras(),
        }

    def _output_axes(self, signature):
        rows = ["batch"] + (["hypothesis"] if signature in self._beam_signatures() else [])
        axes = {"text": rows, "tokens": rows + ["output_token"],
                "token_ids": rows + ["output_token"], "length": rows, "score": rows,
                "attention": rows + ["output_token", *self.attention_axes]}
        # Extra outputs are per input row: no hypothesis axis.
        axes.update({name: ["batch", *extra] for name, extra in self.extra_output_axes.items()})
        return axes

    def save(self, export_dir, name, version):
        """Writes `<export_dir>/<name>/<version>/` and its metadata.json.

        Traced without cuDNN kernels, so an export made on a GPU machine runs
        on a CPU-only server. Returns the version's path.
        """
        version_dir = os.path.join(export_dir, name, str(int(version)))
        partial = os.path.join(export_dir, name, f".{int(version)}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        with without_cudnn(self.model):
            signatures = self.signatures()
            tf.saved_model.save(self, partial, signatures=signatures)
        metadata = self.metadata(signatures)
        os.makedirs(os.path.join(partial, "assets.extra"), exist_ok=True)
        with open(os.path.join(partial, METADATA_PATH), "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=2, sort_keys=True)
        if os.path.exists(version_dir):  # a re-export replaces the version whole
            stale = partial + ".old"
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(version_dir, stale)
            shutil.rmtree(stale)
        os.replace(partial, version_dir)
        return version_dir


# `encode`'s constants of the search, in `search_setup`'s nesting order.
STEP_CONSTANTS = ("memory", "memory_mask", "projected_keys", "row_limits")


def _flat_constants(constants):
    flat = tf.nest.flatten(constants)
    if len(flat) != len(STEP_CONSTANTS):
        raise ValueError(f"the search's constants are {len(flat)} tensors, expected "
                         f"{STEP_CONSTANTS}")
    return dict(zip(STEP_CONSTANTS, flat))


def _specs_json(specs):
    return {name: _spec_json(spec) for name, spec in specs.items()}


def _spec_json(spec):
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    return {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in shape]}


@contextlib.contextmanager
def without_cudnn(model):
    """Recurrent layers trace their portable kernel, not cuDNN's.

    Keras' GRU and LSTM take cuDNN's kernel when traced where a GPU is
    visible, and a graph that holds it has no CPU kernel.
    """
    changed = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if getattr(layer, "use_cudnn", False) in ("auto", True):
            changed.append((layer, layer.use_cudnn))
            layer.use_cudnn = False
    try:
        yield
    finally:
        for layer, value in changed:
            layer.use_cudnn = value


class LoadedExport:
    """An exported version loaded back by the server's loader
    (`keras_attention.serving.exported_model.ExportedModel`): `greedy` and
    `beam` take the input tensors (positionally, in the exporter's order)
    and return the output dict, as the exporter's functions do, so the
    evaluation runs on either. (A model trained on the JAX backend is
    evaluated through its export.) The task's facts of metadata.json
    (`grid_shape`, `image_size`, `frame_size` ...) are attributes too."""

    def __init__(self, version_dir):
        from keras_attention.serving.exported_model import ExportedModel

        self.version_dir = version_dir
        self.exported = ExportedModel(version_dir)
        self.metadata = read_metadata(version_dir)  # ours: required
        signatures = self.metadata["signatures"]
        self.beam_width = signatures[BEAM_SIGNATURE]["beam_width"]
        self.greedy = self._call(GREEDY_SIGNATURE)
        self.beam = self._call(BEAM_SIGNATURE)

    def __getattr__(self, name):
        metadata = self.__dict__.get("metadata", {})
        if name in metadata:
            return metadata[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def _call(self, key):
        function = self.exported.function(key)
        # The signature's parameters in the exported function's order.
        names = list(function.function_type.parameters)
        return lambda *inputs: function(**dict(zip(names, inputs, strict=True)))


def ops_without_cpu_kernel(version_dir):
    """Op types in a SavedModel's graphs that no CPU kernel implements.

    An empty list means a CPU-only TensorFlow (Serving) can run it.
    """
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import kernels

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    op_types, functions = set(), set()
    for meta_graph in saved_model.meta_graphs:
        op_types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            functions.add(function.signature.name)
            op_types.update(node.op for node in function.node_def)
    missing = []
    for op_type in sorted(op_types - functions):
        devices = {k.device_type for k in kernels.get_registered_kernels_for_op(op_type).kernel}
        if not devices & {"CPU", "DEFAULT"}:  # DEFAULT kernels (NoOp ...) run on any device
            missing.append(op_type)
    return missing
