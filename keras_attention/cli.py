"""The inference command line, `keras-attention`: runs an exported model
(a SavedModel with its `assets.extra/metadata.json`) with TensorFlow alone.

    keras-attention translate --model DIR [FILE ...]        lines of FILEs, or stdin (-)
    keras-attention caption   --model DIR IMAGE [IMAGE ...]
    keras-attention read      --model DIR IMAGE [IMAGE ...]  line images: their text
    keras-attention video     --model DIR CLIP [CLIP ...]    GIFs, or .npy/.npz arrays
    keras-attention serve     [SERVER OPTIONS ...]            the REST server

`--model` is a version directory or a base of numbered versions (the
highest, or `--version N`). Options of translate, caption, read and video:

    --beam          the `beam_search` signature instead of `serving_default`
                    (video: the beam signature for the clip's kind, below)
    --nbest N       the N best hypotheses per input (implies --beam)
    --json          one JSON object per input and line: input, text, tokens,
                    score, length (and hypotheses with --nbest)
    --attention     with --json: the attention weights too
    --plot OUT_DIR  one attention PNG per input (of its best hypothesis)
    --batch-size B  inputs per model call (default 32)
    --input KIND    video: what the files are, auto, gif, frames or features

Example:

    $ printf 'the red dog\\n\\na cat runs\\n' | keras-attention translate --model export/translator
    $ keras-attention caption --model export/captioner --nbest 3 cat.jpg dog.png

A video clip is one of three kinds, each run through the signatures that
the export's metadata.json says take it (an input of that `kind`):

    kind      file                                      signatures (greedy, beam)
    gif       an animated GIF                           gif_greedy, gif_beam
    frames    .npy/.npz, uint8 [T, H, W, 3] (RGB)       serving_default, beam_search
    features  .npy/.npz, float [T, D], D = the model's  features_greedy, features_beam
              feature_dim (its frame encoder's output)

`--input auto` (the default) reads .npy and .npz files as arrays, frames or
features by their shape, and any other file as a GIF; `--input KIND` reads
every file as that kind. A .npz holds one array, or names it `frames` or
`features`. Consecutive clips of one kind and frame size share a batch,
padded to the longest; each gets its own length. A model trained on
precomputed features (`source=features` in its metadata) takes features
only: its `serving_default` and `beam_search` take them, and GIFs or
frames end with an error that says so.

    $ python -c "import numpy as np; np.save('clip.npy', np.zeros((8, 64, 64, 3), np.uint8))"
    $ keras-attention video --model export/video_captioner clip.npy dance.gif

Plain output is one line per input (translate: the text; caption, read and video:
the text, after the file's path and a tab when there are several files);
with --nbest, one line per hypothesis: the input's key (line number from 0,
or the path), the score and the text, tab-separated.

A missing or foreign model, a model of another task, an unreadable file,
bytes the model cannot decode, an array of the wrong shape or dtype, a
clip kind the model has no signature for, or --nbest above what the export
keeps, end with status 2 and a one-line `error: ...` on stderr, no
traceback. The training code is never imported.
"""

import argparse
import importlib
import itertools
import json
import os
import re
import sys
from typing import Callable, NamedTuple, Optional

from keras_attention import native_memory
from keras_attention.export_format import (
    BEAM_SIGNATURE,
    GREEDY_SIGNATURE,
    OUTPUT_NAMES,
    cut_to_extents,
    signature_metadata,
)

DEFAULT_BATCH_SIZE = 32
STDIN = "-"
SERVE_HELP = "run the REST server, with its attention explorer page"
# Video clip kinds (`--input`) -> the input `kind` that the video export's
# metadata.json gives the signatures' clip input (training/video/export.py);
# the frames and features signatures also take each clip's length, kind
# `frame_count`.
CLIP_INPUT_KINDS = {"gif": "video", "frames": "frames", "features": "frame_features"}
FRAME_COUNT_KIND = "frame_count"
CLIP_ARRAY_KINDS = ("frames", "features")  # the kinds a .npy or .npz file holds
CLIP_KIND_WORDS = {"gif": "animated GIFs", "frames": "frames (uint8 [T, H, W, 3])",
                   "features": "per-frame features (float [T, D])"}
ARRAY_EXTENSIONS = (".npy", ".npz")
NPY_MAGIC, NPZ_MAGIC = b"\x93NUMPY", b"PK\x03\x04"  # how each file starts (a .npz is a zip)
SERVER_MODULE = "keras_attention.serving.server"
SERVER_PACKAGES = ("starlette", "uvicorn")  # the `serve` extra


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


class Command(NamedTuple):
    """What differs between translate, caption, read and video.

    `accepts(task)` says whether an export's metadata task is this
    command's; `cannot_read` words a model failure on one input; `help`
    is its line in `keras-attention --help`, `details` more for its own.
    Commands of `clips` (video) route each input by its kind (gif, frames,
    features) to the signatures the metadata names for it; the others
    feed their string input to `greedy_signature` or `beam_signature`.
    """

    name: str
    task: str
    accepts: Callable
    reads_lines: bool
    cannot_read: str
    help: str
    plot: Callable  # (item, data, hypothesis, path) -> path, or None: nothing to draw
    input_name: str = "FILE"  # the inputs' name in --help
    greedy_signature: str = GREEDY_SIGNATURE
    beam_signature: str = BEAM_SIGNATURE
    clips: bool = False
    details: str = ""


# Each command's attention plot of one input (`plot_best` calls it).
def plot_text(item, data, hypothesis, path):
    """Output words against source words (`translate`)."""
    from keras_attention import plots

    source = [_text(word) for word in hypothesis.extras.get("source_tokens", [])]
    if not source:
        print(f"note: {item.label}: empty input, no attention plot", file=sys.stderr)
        return None
    # The figure is as wide as the source: a longer title would be cut.
    title = _short(hypothesis.text, limit=max(30, 8 * len(source)))
    plots.plot_attention(hypothesis.attention, source, hypothesis.tokens, path, title=title)
    return path


def plot_image(item, data, hypothesis, path):
    """Each word's attention over the image (`caption`)."""
    from keras_attention import plots

    plots.plot_image_attention(_decode_frames(data, animated=False), hypothesis.attention,
                               hypothesis.tokens, path, title=_short(hypothesis.text))
    return path


def plot_line(item, data, hypothesis, path):
    """Each character's attention along the line image (`read`)."""
    from keras_attention import plots

    plots.plot_line_attention(_decode_frames(data, animated=False), hypothesis.attention,
                              hypothesis.tokens, path, title=_short(hypothesis.text))
    return path


def plot_clip(item, data, hypothesis, path):
    """Each word's attention over the clip's frames (`video`); features
    clips, which have no pictures, get the weights over the frame numbers."""
    from keras_attention import plots

    attention, title = hypothesis.attention, _short(hypothesis.text)
    # [T, F, ...]: a model that also attends within frames sums to frames.
    weights = attention.reshape(attention.shape[0], attention.shape[1], -1).sum(-1)
    if item.kind == "features":
        frame_names = [f"frame {number}" for number in range(weights.shape[1])]
        plots.plot_attention(weights, frame_names, hypothesis.tokens, path, title=title)
        return path
    frames = data if item.kind == "frames" else _decode_frames(data, animated=True)
    if len(frames) != weights.shape[1]:  # the model samples frames: show those
        import numpy as np
        picks = np.linspace(0, len(frames) - 1, weights.shape[1]).round().astype(int)
        frames = frames[picks]
    plots.plot_frame_attention(frames, weights, hypothesis.tokens, path, title=title)
    return path


COMMANDS = {
    "translate": Command("translate", "translation", lambda task: task == "translation", True,
                         "the model failed on it",
                         "translate lines of text (from FILEs, or stdin)", plot=plot_text),
    "caption": Command("caption", "image_captioning",
                       lambda task: task == "image_captioning", False,
                       "not an image the model can read", "caption images",
                       plot=plot_image, input_name="IMAGE"),
    "read": Command("read", "text_recognition", lambda task: task == "text_recognition", False,
                    "not an image the model can read", "read the text in line images",
                    plot=plot_line, input_name="IMAGE"),
    "video": Command(
        "video", "video_captioning", lambda task: task == "video_captioning", False,
        "not a clip the model can read",
        "caption video clips (GIFs, or frames/features in .npy/.npz)", plot=plot_clip,
        input_name="CLIP", clips=True,
        details="A CLIP is an animated GIF, or a .npy/.npz file holding frames, uint8 "
                "[T, H, W, 3] (RGB), or per-frame features, float [T, D] as the model's "
                "frame encoder makes them. Each kind runs through the signatures that the "
                "export's metadata.json names for it (gif_greedy/gif_beam, "
                "serving_default/beam_search, features_greedy/features_beam). A model "
                "trained on precomputed features takes features only."),
}


class Item(NamedTuple):
    """One input. `label` names it in errors ("notes.txt:3", "cat.png");
    `shown` is what `--json` reports as its input (the line, or the path);
    `data` the model's input bytes (None: the file at `path`, read when its
    batch runs). Video clips: `kind` is gif, frames or features, and
    `shape` an array's shape ([T, H, W, 3] or [T, D])."""

    label: str
    shown: str
    data: Optional[bytes]
    path: Optional[str]
    kind: Optional[str] = None
    shape: Optional[tuple] = None


# ---------------------------------------------------------------- arguments
class _HelpFormatter(argparse.HelpFormatter):
    """argparse measures the commands' names without the indent they are
    printed with, so the longest (translate) had its help pushed to the
    next line; this counts it, and every command's help starts on its line."""

    def add_argument(self, action):
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS:
            for subaction in self._iter_indented_subactions(action):  # indented while here
                self._action_max_length = max(
                    self._action_max_length,
                    len(self._format_action_invocation(subaction)) + self._current_indent)


def build_parser():
    """The parser of translate, caption, read and video (`serve` is listed; its
    arguments are the server's own, see `main`)."""
    parser = argparse.ArgumentParser(
        prog="keras-attention", formatter_class=_HelpFormatter,
        description="Run an exported keras-attention model: translate text, caption "
                    "images or video clips, read line images, or serve models over TF "
                    "Serving's REST API.",
        epilog="Each command's options: keras-attention COMMAND --help.")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help,
                                  description=f"{command.help[0].upper()}{command.help[1:]}. "
                                              f"{command.details}".strip())
        sub.add_argument("--model", required=True, metavar="DIR",
                         help="a SavedModel version directory, or a base of numbered versions")
        sub.add_argument("--version", type=int, default=None,
                         help="the version under --model (default: the highest)")
        if command.reads_lines:
            sub.add_argument("inputs", nargs="*", metavar="FILE",
                             help="text files, one input per line (default, or -: stdin)")
        else:
            sub.add_argument("inputs", nargs="+", metavar=command.input_name,
                             help=f"{command.input_name.lower()} files")
        if command.clips:
            sub.add_argument("--input", choices=("auto", *CLIP_INPUT_KINDS), default="auto",
                             help="what the CLIP files are; auto (default): .npy and .npz "
                                  "files are frames or features by their array's shape, "
                                  "other files GIFs")
        beam_signature = "beam signature for the clip's kind" if command.clips \
            else f"{command.beam_signature} signature"
        sub.add_argument("--beam", action="store_true",
                         help=f"decode with the {beam_signature}")
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
    commands.add_parser("serve", add_help=False, help=SERVE_HELP)
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def console_main():
    """The `keras-attention` console script: `main` as a process of its own,
    whose TensorFlow loads without Keras (`tensorflow_alone`)."""
    from keras_attention import tensorflow_alone

    tensorflow_alone.prepare()
    return main()


def main(argv=None):
    """The `keras-attention` command on `argv`; returns the exit status.

    Example:

        main(["translate", "--model", "export/translator", "notes.txt"])   # -> 0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's C++ start-up chatter would bury a one-line error; set
    # before TensorFlow loads (this package imports it only when needed).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_memory.retain_freed_memory()  # before TensorFlow's first step buffers
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
              f'pip install "keras-attention-kit[serve]"', file=sys.stderr)
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


def clip_items(paths, requested="auto"):
    """Video clips as Items of kind gif, frames or features (`requested`,
    or `auto`: see the module docstring). Arrays are read and checked now,
    so a wrong one fails before the model loads; they are read again when
    their batch runs.

    Example (`frames.npy` holds a uint8 [8, 64, 64, 3] array):

        clip_items(["dance.gif", "frames.npy"])   # kinds gif, frames
    """
    items = []
    for item in file_items(paths):
        is_array = item.path.lower().endswith(ARRAY_EXTENSIONS)
        if requested == "gif" or (requested == "auto" and not is_array):
            items.append(item._replace(kind="gif"))
            continue
        kind, array = read_clip_array(item.path, requested)
        items.append(item._replace(kind=kind, shape=tuple(array.shape)))
    return items


def read_clip_array(path, requested="auto"):
    """The clip in a .npy or .npz file and its kind, frames or features.

    `requested` is the kind it must be, or `auto`: frames when it is
    `[T, H, W, 3]`, features when `[T, D]`. Any other array is a CliError
    that names the file and says what was expected.
    """
    import numpy as np

    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
        if not magic.startswith((NPY_MAGIC, NPZ_MAGIC)):  # numpy would try it as a pickle
            raise CliError(f"{path}: not a .npy or .npz file (it starts with {magic!r})")
        # Memory-mapped: checking a clip reads its header, not its frames.
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # a truncated file, an object array
        raise CliError(f"{path}: cannot read it as a .npy or .npz array: "
                       f"{_reason(error)}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            array = loaded[_npz_array_name(path, loaded.files)]
    else:
        array = loaded
    return clip_array_kind(path, array.dtype, array.shape, requested), array


def _npz_array_name(path, names):
    """A .npz clip holds one array, or names it `frames` or `features`."""
    if len(names) == 1:
        return names[0]
    named = [name for name in names if name in CLIP_ARRAY_KINDS]
    if len(named) == 1:
        return named[0]
    raise CliError(f"{path}: holds {len(names)} arrays ({', '.join(names) or 'none'}); a clip "
                   f".npz holds one array, or one named frames or features")


def clip_array_kind(path, dtype, shape, requested="auto"):
    """frames or features: what an array of `dtype` and `shape` is as a clip
    (`requested`, or `auto`: by its rank); a CliError naming `path` otherwise.

    Example:

    >>> import numpy as np
    >>> clip_array_kind("clip.npy", np.dtype("uint8"), (8, 64, 64, 3))
    'frames'
    >>> clip_array_kind("clip.npy", np.dtype("float32"), (8, 64, 64, 3))
    Traceback (most recent call last):
    ...
    keras_attention.cli.CliError: clip.npy: holds a float32 [8, 64, 64, 3] array; frames ...
    """
    import numpy as np

    found = f"{path}: holds a {dtype} {list(shape)} array"
    kind = requested
    if requested == "auto":
        kind = "frames" if len(shape) == 4 else "features" if len(shape) == 2 else None
    if kind is None:
        raise CliError(f"{found}; a clip is frames, uint8 [T, H, W, 3], or per-frame "
                       f"features, float [T, D]")
    if kind == "frames" and not (len(shape) == 4 and shape[-1] == 3 and dtype == np.uint8):
        raise CliError(f"{found}; frames are uint8 [T, H, W, 3] (RGB, 0-255)")
    if kind == "features" and not (len(shape) == 2 and np.issubdtype(dtype, np.floating)):
        raise CliError(f"{found}; features are float [T, D], one row per frame")
    if shape[0] == 0:
        raise CliError(f"{found}: no frames (T = 0)")
    return kind


def _load_value(item):
    """What the model takes of one input: its bytes, or a clip's array."""
    if item.kind in CLIP_ARRAY_KINDS:
        import numpy as np

        return np.asarray(read_clip_array(item.path, item.kind)[1])
    return _load_bytes(item)


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
class Route(NamedTuple):
    """Where inputs of one kind go: the signature, its input that takes
    their content and, for clip arrays, its input that takes each clip's
    length (frames past it are padding)."""

    signature: str
    data_input: str
    lengths_input: Optional[str] = None


def open_model(command, args, kinds=(None,)):
    """Loads the export and checks it suits `command`, the options and the
    inputs' `kinds` (video: gif, frames, features; None for the others).

    Returns `(model, {kind: Route}, number of hypotheses)`.
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
    if command.clips:
        routes = {kind: clip_route(model, kind, beam) for kind in sorted(kinds)}
    else:
        routes = {None: string_route(model, command, beam)}
    count = 1
    if args.nbest is not None:
        for route in routes.values():
            kept = available_hypotheses(model, route.signature)
            if args.nbest > kept:
                raise CliError(f"--nbest {args.nbest}: this export keeps {kept} hypotheses "
                               f"per input (num_hypotheses in its metadata); ask for at most "
                               f"{kept}")
        count = args.nbest
    return model, routes, count


def string_route(model, command, beam):
    """translate, caption, read: the command's signature, which takes one string."""
    signature_name = command.beam_signature if beam else command.greedy_signature
    if signature_name not in model.signatures:
        raise CliError(f"{model.path}: has no {signature_name} signature (it has "
                       f"{', '.join(sorted(model.signatures))})")
    inputs = model.signature(signature_name).inputs
    string_inputs = [name for name, info in inputs.items() if info.is_string]
    if len(inputs) != 1 or not string_inputs:
        raise CliError(f"{model.path}: signature {signature_name} takes "
                       f"{', '.join(sorted(inputs))}; this command feeds one string input")
    return Route(signature_name, string_inputs[0])


def clip_route(model, kind, beam):
    """video: the greedy (or beam) signature whose inputs the metadata
    describes as clips of `kind` (and, for arrays, their lengths), the
    standard names first. A CliError saying what the model takes instead
    when none does."""
    decoding = "beam" if beam else "greedy"
    wanted = {CLIP_INPUT_KINDS[kind]} | ({FRAME_COUNT_KIND} if kind != "gif" else set())
    offered = []
    # A model trained on features takes them in serving_default: that one first.
    for name in sorted(model.signatures,
                       key=lambda name: (name not in (GREEDY_SIGNATURE, BEAM_SIGNATURE), name)):
        described = signature_metadata(model.metadata, name)
        if described.get("decoding") != decoding:
            continue
        inputs = described.get("inputs", {})
        offered.append(f"{name} ({described.get('description') or ', '.join(inputs)})")
        input_of_kind = {info.get("kind"): input_name for input_name, info in inputs.items()}
        if set(input_of_kind) != wanted:
            continue
        if set(model.signature(name).inputs) != set(inputs):
            raise CliError(f"{model.path}: signature {name} takes "
                           f"{', '.join(sorted(model.signature(name).inputs))}, not the "
                           f"{', '.join(sorted(inputs))} its metadata.json describes")
        return Route(name, input_of_kind[CLIP_INPUT_KINDS[kind]],
                     input_of_kind.get(FRAME_COUNT_KIND))
    why = ""
    if model.metadata.get("source") == "features":
        why = " (it was trained on precomputed features: give it features, float [T, D])"
    raise CliError(f"{model.path}: takes no {CLIP_KIND_WORDS[kind]}{why}; its {decoding} "
                   f"signatures take: {'; '.join(offered) or 'nothing its metadata describes'}")


def check_clip_shapes(model, routes, items):
    """Each clip array against its signature's input: a features file must
    have as many values per frame as the model's frame encoder makes."""
    for item in items:
        if item.shape is None:
            continue
        route = routes[item.kind]
        expected = model.signature(route.signature).inputs[route.data_input].shape  # [B, T, ...]
        if expected is None:
            continue
        for got, wanted in zip(item.shape[1:], expected[2:]):
            if wanted is not None and got != wanted:
                per_frame = ", ".join(str(size) for size in expected[2:])
                raise CliError(f"{item.label}: holds {item.kind} {list(item.shape)}; this "
                               f"model's {route.signature} takes {item.kind} [T, {per_frame}]")


def available_hypotheses(model, signature_name):
    """How many hypotheses a beam signature returns per input."""
    described = signature_metadata(model.metadata, signature_name)
    if "num_hypotheses" in described:
        return int(described["num_hypotheses"])
    shape = model.signature(signature_name).outputs["text"].shape  # [B, N]
    return int(shape[1]) if shape and len(shape) > 1 and shape[1] else 1


def batch_inputs(model, route, values):
    """The signature's inputs for one batch: strings as they are; clip
    arrays padded to the longest clip, with each clip's length."""
    import numpy as np

    if route.lengths_input is None:
        return {route.data_input: np.array(values, dtype=object)}
    lengths = np.array([len(value) for value in values], "int32")
    dtype = model.signature(route.signature).inputs[route.data_input].dtype
    # Padding frames may hold anything (the export masks them): zeros.
    padded = np.zeros((len(values), lengths.max(), *values[0].shape[1:]), dtype)
    for row, value in enumerate(values):
        padded[row, :len(value)] = value
    return {route.data_input: padded, route.lengths_input: lengths}


def predict_batch(model, route, command, items, values):
    """Runs one batch; on a TensorFlow error, runs its inputs one by one to
    name the input the model cannot take."""
    import tensorflow as tf

    def predict(batch_values):
        return model.predict(route.signature, batch_inputs(model, route, batch_values))

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
    """Writes the attention plot of one input with its command's `plot`;
    returns its path, or None (with a note on stderr) when there is nothing
    to draw."""
    if hypothesis.attention is None or hypothesis.length == 0:
        print(f"note: {item.label}: empty output, no attention plot", file=sys.stderr)
        return None
    stem = f"{number:04d}" if command.reads_lines else f"{number:04d}-{_safe_stem(item.path)}"
    path = os.path.join(out_dir, stem + ".png")
    return command.plot(item, data, hypothesis, path)


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
    elif command.clips:
        items = clip_items(args.inputs, args.input)
        total = len(items)
    else:
        items = file_items(args.inputs)
        total = len(items)
    kinds = {item.kind for item in items} if command.clips else {None}
    model, routes, count = open_model(command, args, kinds)
    if command.clips:
        check_clip_shapes(model, routes, items)
    if args.plot:
        try:
            os.makedirs(args.plot, exist_ok=True)
        except OSError as error:
            raise CliError(f"{args.plot}: cannot write plots there: {_reason(error)}") from None
    several_files = not command.reads_lines and total > 1
    progress = _Progress(total) if wants_progress(total, batch_size) else None
    index = 0
    try:
        for batch in _batches(items, batch_size):
            route = routes[batch[0].kind]
            described = signature_metadata(model.metadata, route.signature)
            attention_axes = [axis for axis in
                              described.get("output_axes", {}).get("attention", [])
                              if axis not in ("batch", "hypothesis")]
            values = [_load_value(item) for item in batch]
            outputs = predict_batch(model, route, command, batch, values)
            for row, (item, data) in enumerate(zip(batch, values)):
                hypotheses = split_outputs(outputs, described, row, count)
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


def _batches(items, batch_size):
    """Consecutive items, `batch_size` at a time, a batch of one kind and
    one frame size (the shape a model call can stack); as `items` come, so
    lines typed at a terminal are answered one by one."""
    def stackable(item):  # a clip's kind and the shape of its frames ([H, W, 3] or [D])
        return item.kind, item.shape[1:] if item.shape else None

    for _, group in itertools.groupby(items, key=stackable):
        while True:
            batch = list(itertools.islice(group, batch_size))
            if not batch:
                break
            yield batch


def _error_summary(error):
    from keras_attention.serving.exported_model import tf_error_summary

    return tf_error_summary(error)
