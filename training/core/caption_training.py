"""The training step every captioning task (images, video) shares: a caption
vocabulary, encoded examples, and `fitting.fit` on batches of them."""

import os

from training.core import batching, fitting
from training.core.text import load_or_build_vocabulary


def fit_captioner(config, workdir, corpus, encode_examples, source_spec, build_model, log,
                  optimizer_builder=fitting.default_optimizer, callbacks=()):
    """Trains a captioner on `corpus.train`, validating on `corpus.dev`
    (resuming at the step where a run stopped).

    Args:
        config: The task's `TrainingConfig` (with `vocab_size`,
            `max_caption_tokens` and `min_word_count`).
        corpus: `.train` and `.dev` lists of examples with `.captions`.
        encode_examples: `(examples, vocabulary) -> (sources, targets_in,
            targets_out)`, one row per caption.
        source_spec: The `tf.TensorSpec` (or nest of them) of one source.
        build_model: `vocab_size -> keras.Model`.

    Returns:
        `(fit_result, vocabulary)`.
    """
    vocabulary = load_or_build_vocabulary(
        os.path.join(workdir, "vocabulary.json"),
        [caption for example in corpus.train for caption in example.captions],
        config.vocab_size, config.max_caption_tokens, config.min_word_count, name="vocabulary")
    log(f"vocabulary: {vocabulary.size} words")
    train_examples = encode_examples(corpus.train, vocabulary)
    dev_examples = encode_examples(corpus.dev, vocabulary)

    replicas = fitting.data_replicas(config)
    dev_batch = max(replicas, config.eval_batch_size // replicas * replicas)
    result = fitting.fit(
        config, workdir,
        build_model=lambda: build_model(vocabulary.size),
        train_data=lambda skip: batching.make_dataset(
            train_examples, config.batch_size, shuffle=True, seed=config.seed, repeat=True,
            source_spec=source_spec).skip(skip),
        dev_data=batching.make_dataset(dev_examples, dev_batch, shuffle=False,
                                       drop_remainder=replicas > 1, source_spec=source_spec),
        log=log, optimizer_builder=optimizer_builder, callbacks=callbacks,
    )
    return result, vocabulary
