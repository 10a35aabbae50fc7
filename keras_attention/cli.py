"""The inference command line, `keras-attention`: runs an exported model
(a SavedModel with its `assets.extra/metadata.json`) with TensorFlow alone.

    keras-attention translate --model DIR [FILE ...]        lines of FILEs, or stdin (-)
    keras-attention caption   --model DIR IMAGE [IMAGE ...]
    keras-attention video     --model DIR CLIP [CLIP ...]    animated GIFs
    keras-attention serve     [SERVER OPTIONS ...]            the REST server

`--model` is a version directory or a base of numbered versions (the
highest, or `--version N`). Options of translate, caption and video:

    --beam          the `beam_search` signature instead of `serving_default`
                    (video: `gif_beam` instead of `gif_greedy`)
    --nbest N       the N best hypotheses per input (implies --beam)
    --json          one JSON object per input and line: input, text, tokens,
                    score, length (and hypotheses with --nbest)
    --attention     with --json: the attention weights too
    --plot OUT_DIR  one attention PNG per input (of its best hypothesis)
    --batch-size B  inputs per model call (default 32)

Example:

    $ printf 'the red dog\\n\\na cat runs\\n' | keras-attention translate --model export/translator
    $ keras-attention caption --model export/captioner --nbest 3 cat.jpg dog.png

Plain output is one line per input (translate: the text; caption and video:
the text, after the file's path and a tab when there are several files);
with --nbest, one line per hypothesis: the input's key (line number from 0,
or the path), the score and the text, tab-separated.

A missing or foreign model, a model of another task, an unreadable file,
bytes the model cannot decode, or --nbest above what the export keeps, end
with status 2 and a one-line `error: ...` on stderr, no traceback. The
training code is never imported.
"""

import argparse
import importlib
import itertools
import json
import os
import re
import sys
from typing import Callable, NamedTuple, Optional

from keras_attention.export_format import (
    BEAM_SIGNATURE,
    GREEDY_SIGNATURE,
    OUTPUT_NAMES,
    cut_to_extents,
    signature_metadata,
)

DEFAULT_BATCH_SIZE = 32
STDIN = "-"
SERVER_MODULE = "keras_attention.serving.server"
SERVER_PACKAGES = ("starlette", "uvicorn")  # the `serve` extra


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


class Command(NamedTuple):
    """What differs between translate, caption and video.

    `accepts(task)` says whether an export's metadata task is this
    command's; `cannot_read` words a model failure on one input.
    """

    name: str
    task: str
    accepts: Callable
    reads_lines: bool
    cannot_read: str
    help: str
    greedy_signature: str = GREEDY_SIGNATURE
    beam_signature: str = BEAM_SIGNATURE


COMMANDS = {
    "translate": Command("translate", "translation", lambda task: task == "translation", True,
                         "the model failed on it",
                         "translate lines of text (from FILEs, or stdin)"),
    "caption": Command("caption", "image_captioning",
                       lambda task: task == "image_captioning", False,
                       "not an image the model can read", "caption images"),
    # The video export's default signatures take frames and lengths; its GIF
    # signatures take the files as they are.
    "video": Command("video", "video_captioning", lambda task: task == "video_captioning",
                     False, "not a clip the model can read",
                     "caption video clips (animated GIFs)", "gif_greedy", "gif_beam"),
}


class Item(NamedTuple):
    """One input. `label` names it in errors ("notes.txt:3", "cat.png");
    `shown` is what `--json` reports as its input (the line, or the path);
    `data` the model's input bytes (None: the file at `path`, read when its
    batch runs)."""

    label: str
    shown: str
    data: Optional[bytes]
    path: Optional[str]


# ---------------------------------------------------------------- arguments
def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-attention",
        description="Run an exported keras-attention model: translate, caption, serve.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        sub.add_argument("--model", required=True, metavar="DIR",
                         help="a SavedModel version directory, or a base of numbered versions")
        sub.add_argument("--version", type=int, default=None,
                         help="the version under --model (default: the highest)")
        if command.reads_lines:
            sub.add_argument("inputs", nargs="*", metavar="FILE",
                             help="text files, one input per line (default, or -: stdin)")
        else:
            what = "IMAGE" if command.name == "caption" else "CLIP"
            sub.add_argument("inputs", nargs="+", metavar=what, help=f"{what.lower()} files")
        sub.add_argument("--beam", action="store_true",
                         help=f"decode with the {command.beam_signature} signature")
        sub.add_argument("--nbest", type=_positive_int, default=None, metavar="N",
                         help="print the N best hypotheses per input (implies --beam)")
        sub.add_argument("--json", action="store_true",
                         help="one JSON object per input and line")
        sub.add_argument("--attention", action="store_true",
                         help="with --json: include the attention weights")
        sub.add_argument("--plot", metavar="OUT_DIR", default=None,
                         help="write one attention plot (PNG) per input into OUT_DIR")
        sub.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                         help=f"inputs per model call (default {DEFAULT_BATCH_SIZE})")
    commands.add_parser("serve", add_help=False,
                        help="run the REST server (its options: keras-attention serve --help)")
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv=None):
    """The `keras-attention` entry point; returns the exit status.

    Example:

        main(["translate", "--model", "export/translator", "notes.txt"])   # -> 0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up chatter would bury a one-line error; set
    # before TensorFlow loads (this package imports it only when needed).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv[:1] == ["serve"]:  # every option after it is the server's, --help included
        return run_server(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.attention and not args.json:
        parser.error("--attention needs --json")
    try:
        run_command(COMMANDS[args.command], args)
    except CliError as error:
        sys.stdout.flush()
        message = " ".join(str(error).split())  # one line, whatever the message held
        print(f"error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head`: the reader has all it wants
        # Python's exit flush would fail on the closed pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def run_server(argv):
    """`keras-attention serve ...`: hands every argument to the server's `main`."""
    try:
        server = importlib.import_module(SERVER_MODULE)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in SERVER_PACKAGES:
            raise
        print(f"error: the server needs {error.name}, which is not installed: "
              f'pip install "keras-attention[serve]"', file=sys.stderr)
        return 2
    status = server.main(argv)
    return 0 if status is None else status


# ------------------------------------------------------------------- inputs
def read_line_items(paths, stdin=None):
    """The lines of `paths` (`-`: stdin) as Items, end-of-line removed.

    Example:

    >>> import io
    >>> items = read_line_items(["-"], io.StringIO("la casa\\n\\nel perro\\n"))
    >>> [item.data for item in items], items[2].label
    ([b'la casa', b'', b'el perro'], '<stdin>:3')
    """
    stdin = sys.stdin if stdin is None else stdin
    items = []
    for path in paths or [STDIN]:
        name = "<stdin>" if path == STDIN else path
        try:
            lines = _stdin_lines(stdin) if path == STDIN else _file_lines(path)
            for number, line in enumerate(lines, start=1):
                items.append(_line_item(name, number, line))
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"{name}: cannot read it: {_reason(error)}") from None
    return items


def stream_line_items(stdin):
    """Lines typed at a terminal, each one as soon as it is entered."""
    for number, line in enumerate(_stdin_lines(stdin), start=1):
        yield _line_item("<stdin>", number, line)


def _line_item(name, number, line):
    line = line.rstrip(b"\r\n")
    return Item(f"{name}:{number}", line.decode("utf-8", "replace"), line, None)


def _stdin_lines(stdin):
    # Bytes when there are (the model itself replaces invalid UTF-8), text otherwise.
    buffer = getattr(stdin, "buffer", None)
    if buffer is not None:
        yield from buffer
    else:
        for line in stdin:
            yield line.encode("utf-8") if isinstance(line, str) else line


def _file_lines(path):
    with open(path, "rb") as handle:
        return handle.readlines()


def file_items(paths):
    """Image or clip files as Items; each must open now, so a typo fails
    before the model loads. Their bytes are read batch by batch."""
    for path in paths:
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise CliError(f"{path}: cannot read it: {_reason(error)}") from None
    return [Item(path, path, None, path) for path in paths]


def _load_bytes(item):
    if item.data is not None:
        return item.data
    try:
        with open(item.path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CliError(f"{item.path}: cannot read it: {_reason(error)}") from None


def _reason(error):
    return getattr(error, "strerror", None) or str(error).splitlines()[0]


# -------------------------------------------------------------------- model
def open_model(command, args):
    """Loads the export and checks it suits `command` and the options.

    Returns `(model, signature name, input name, number of hypotheses)`.
    """
    from keras_attention.serving.exported_model import ExportedModel, ModelNotFoundError

    try:
        model = ExportedModel(args.model, args.version)
    except ModelNotFoundError as error:
        raise CliError(str(error)) from None
    where = model.path
    if not model.metadata:
        raise CliError(f"{where}: has no assets.extra/metadata.json, so it is not a "
                       "keras-attention export (its task is unknown)")
    task = model.task
    if not command.accepts(task):
        right = [c.name for c in COMMANDS.values() if c.accepts(task)]
        hint = f"; use `keras-attention {right[0]}`" if right else ""
        raise CliError(f"{where}: is a {task!r} model (the task in its metadata), "
                       f"not {command.task!r}{hint}")
    beam = args.beam or args.nbest is not None
    signature_name = command.beam_signature if beam else command.greedy_signature
    if signature_name not in model.signatures:
        raise CliError(f"{where}: has no {signature_name} signature (it has "
                       f"{', '.join(sorted(model.signatures))})")
    inputs = model.signature(signature_name).inputs
    string_inputs = [name for name, info in inputs.items() if info.is_string]
    if len(inputs) != 1 or not string_inputs:
        raise CliError(f"{where}: signature {signature_name} takes {', '.join(sorted(inputs))}; "
                       "this command feeds one string input")
    count = 1
    if args.nbest is not None:
        kept = available_hypotheses(model, signature_name)
        if args.nbest > kept:
            raise CliError(f"--nbest {args.nbest}: this export keeps {kept} hypotheses per "
                           f"input (num_hypotheses in its metadata); ask for at most {kept}")
        count = args.nbest
    return model, signature_name, string_inputs[0], count


def available_hypotheses(model, signature_name):
    """How many hypotheses a beam signature returns per input."""
    described = signature_metadata(model.metadata, signature_name)
    if "num_hypotheses" in described:
        return int(described["num_hypotheses"])
    shape = model.signature(signature_name).outputs["text"].shape  # [B, N]
    return int(shape[1]) if shape and len(shape) > 1 and shape[1] else 1


def predict_batch(model, signature_name, input_name, command, items, values):
    """Runs one batch; on a TensorFlow error, runs its inputs one by one to
    name the input the model cannot take."""
    import numpy as np
    import tensorflow as tf

    def predict(batch_values):
        return model.predict(signature_name, {input_name: np.array(batch_values, dtype=object)})

    try:
        return predict(values)
    except tf.errors.OpError as error:
        culprit, reason = items[0], error
        if len(values) > 1:
            for item, value in zip(items, values):
                try:
                    predict([value])
                except tf.errors.OpError as single_error:
                    culprit, reason = item, single_error
                    break
        raise CliError(f"{culprit.label}: {command.cannot_read} "
                       f"({_error_summary(reason)})") from None


# ------------------------------------------------------------------ outputs
class Hypothesis(NamedTuple):
    """One decoded answer, every output cut to its own extent."""

    text: str
    tokens: list
    score: float
    length: int
    attention: object  # [T, ...] float array, T = length
    extras: dict  # task outputs (translation: source_tokens [S], source_length)


def split_outputs(outputs, described, row, count):
    """The `count` best hypotheses of batch row `row`.

    Each output is indexed by its axes in the metadata (`output_axes`) and
    cut along every axis that grows with the batch's longest row, to the
    row's extent (`axis_lengths`: `output_token` -> `length` ...), so the
    answer is what the input alone would have got.
    """
    axes = described.get("output_axes", {})
    extents = described.get("axis_lengths", {"output_token": "length"})
    hypotheses = []
    for rank in range(count):
        # Outputs the metadata does not describe are left out.
        selected = {name: _select(value, axes[name], row, rank)
                    for name, value in outputs.items() if name in axes}
        rest_axes = {name: rest for name, (_, rest) in selected.items()}
        values = {name: value for name, (value, _) in selected.items()}
        cut = cut_to_extents(values, rest_axes, {
            axis: values[source] for axis, source in extents.items() if source in values})
        hypotheses.append(Hypothesis(
            text=_text(cut["text"]), tokens=[_text(token) for token in cut["tokens"]],
            score=float(cut["score"]), length=int(cut["length"]),
            attention=cut.get("attention"),
            extras={key: value for key, value in cut.items()
                    if key not in OUTPUT_NAMES}))
    return hypotheses


def _select(value, value_axes, row, rank):
    """`value[row(, rank)]` and the axes left."""
    value, rest = value[row], list(value_axes[1:])
    if rest[:1] == ["hypothesis"]:
        value, rest = value[rank], rest[1:]
    return value, rest


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def hypothesis_json(hypothesis, with_attention, attention_axes):
    import numpy as np

    record = {"text": hypothesis.text, "tokens": hypothesis.tokens,
              "score": hypothesis.score, "length": hypothesis.length}
    if with_attention and hypothesis.attention is not None:
        record["attention"] = np.round(hypothesis.attention.astype("float64"), 6).tolist()
        record["attention_axes"] = attention_axes
        for name, value in hypothesis.extras.items():
            value = value.tolist() if hasattr(value, "tolist") else value
            record[name] = _decode_nested(value)
    return record


def _decode_nested(value):
    if isinstance(value, list):
        return [_decode_nested(v) for v in value]
    return _text(value) if isinstance(value, bytes) else value


def format_plain(command, item, index, hypotheses, nbest, several_files):
    """The plain-text lines of one input (see the module docstring)."""
    key = str(index) if command.reads_lines else item.shown
    if nbest:
        prefix = "" if (not command.reads_lines and not several_files) else f"{key}\t"
        return [f"{prefix}{h.score:.4f}\t{h.text}" for h in hypotheses]
    text = hypotheses[0].text
    return [f"{item.shown}\t{text}" if several_files else text]


# -------------------------------------------------------------------- plots
def plot_best(command, item, number, data, hypothesis, out_dir):
    """Writes the attention plot of one input; returns its path, or None
    (with a note on stderr) when there is nothing to draw."""
    from keras_attention import plots

    attention = hypothesis.attention
    if attention is None or hypothesis.length == 0:
        print(f"note: {item.label}: empty output, no attention plot", file=sys.stderr)
        return None
    stem = f"{number:04d}" if command.reads_lines else f"{number:04d}-{_safe_stem(item.path)}"
    path = os.path.join(out_dir, stem + ".png")
    title = _short(hypothesis.text)
    if command.name == "translate":
        source = [_text(word) for word in hypothesis.extras.get("source_tokens", [])]
        if not source:
            print(f"note: {item.label}: empty input, no attention plot", file=sys.stderr)
            return None
        # The figure is as wide as the source: a longer title would be cut.
        title = _short(hypothesis.text, limit=max(30, 8 * len(source)))
        plots.plot_attention(attention, source, hypothesis.tokens, path, title=title)
    elif command.name == "caption":
        plots.plot_image_attention(_decode_frames(data, animated=False), attention,
                                   hypothesis.tokens, path, title=title)
    else:
        frames = _decode_frames(data, animated=True)
        # [T, F, ...]: a model that also attends within frames sums to frames.
        weights = attention.reshape(attention.shape[0], attention.shape[1], -1).sum(-1)
        if len(frames) != weights.shape[1]:  # the model samples frames: show those
            import numpy as np
            picks = np.linspace(0, len(frames) - 1, weights.shape[1]).round().astype(int)
            frames = frames[picks]
        plots.plot_frame_attention(frames, weights, hypothesis.tokens, path, title=title)
    return path


def _decode_frames(data, animated):
    import tensorflow as tf

    frames = tf.io.decode_image(data, channels=3, expand_animations=animated).numpy()
    return frames if not animated or frames.ndim == 4 else frames[None]


def _safe_stem(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "input"


def _short(text, limit=80):
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------- progress
class _Progress:
    """A progress bar on stderr (tqdm, which TensorFlow Datasets installs;
    a plain counter without it). Not `keras.utils.Progbar`: it writes to stdout."""

    def __init__(self, total):
        self.total, self.done = total, 0
        try:
            from tqdm import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, unit="input", file=sys.stderr, leave=False)

    def update(self, count):
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        else:
            sys.stderr.write(f"\r{self.done}/{self.total} inputs")
            sys.stderr.flush()

    def close(self):
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")


def wants_progress(total, batch_size):
    """Many inputs (more than one batch), stderr a terminal, and stdout not
    the same terminal (a redrawn bar would break the answers' lines)."""
    return (total is not None and total > batch_size and _isatty(sys.stderr)
            and not _isatty(sys.stdout))


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------- run
def run_command(command, args):
    """translate / caption / video: inputs -> batches -> printed answers."""
    stdin = sys.stdin
    batch_size = args.batch_size
    if command.reads_lines:
        paths = args.inputs or [STDIN]
        if paths == [STDIN] and _isatty(stdin):
            items, total, batch_size = stream_line_items(stdin), None, 1  # answer as typed
        else:
            items = read_line_items(paths, stdin)
            total = len(items)
    else:
        items = file_items(args.inputs)
        total = len(items)
    model, signature_name, input_name, count = open_model(command, args)
    described = signature_metadata(model.metadata, signature_name)
    attention_axes = [axis for axis in described.get("output_axes", {}).get("attention", [])
                      if axis not in ("batch", "hypothesis")]
    if args.plot:
        try:
            os.makedirs(args.plot, exist_ok=True)
        except OSError as error:
            raise CliError(f"{args.plot}: cannot write plots there: {_reason(error)}") from None
    several_files = not command.reads_lines and total > 1
    progress = _Progress(total) if wants_progress(total, batch_size) else None
    beam = signature_name == command.beam_signature
    index = 0
    iterator = iter(items)
    try:
        while True:
            batch = list(itertools.islice(iterator, batch_size))
            if not batch:
                break
            values = [_load_bytes(item) for item in batch]
            outputs = predict_batch(model, signature_name, input_name, command, batch, values)
            for row, (item, data) in enumerate(zip(batch, values)):
                hypotheses = split_outputs(outputs, described, row, count if beam else 1)
                plot_path = None
                if args.plot:
                    plot_path = plot_best(command, item, index + 1, data, hypotheses[0],
                                          args.plot)
                if args.json:
                    record = {"input": item.shown,
                              **hypothesis_json(hypotheses[0], args.attention, attention_axes)}
                    if args.nbest is not None:
                        record["hypotheses"] = [hypothesis_json(h, args.attention,
                                                                attention_axes)
                                                for h in hypotheses]
                    if plot_path:
                        record["plot"] = plot_path
                    lines = [json.dumps(record, ensure_ascii=False)]
                else:
                    lines = format_plain(command, item, index, hypotheses,
                                         args.nbest is not None, several_files)
                sys.stdout.write("".join(line + "\n" for line in lines))
                index += 1
            sys.stdout.flush()  # answers appear batch by batch in a pipeline
            if progress is not None:
                progress.update(len(batch))
    finally:
        if progress is not None:
            progress.close()


def _error_summary(error):
    from keras_attention.serving.exported_model import tf_error_summary

    return tf_error_summary(error)
