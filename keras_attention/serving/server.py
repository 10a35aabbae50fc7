"""`keras-attention serve` / `python -m keras_attention.serving`: the REST
server, with TensorFlow Serving's flag names.

    keras-attention serve --model_name translator \\
        --model_base_path runs/translation-main-en-es/export/translator --rest_api_port 8501
    curl -d '{"instances": ["Jesus wept."]}' \\
        http://127.0.0.1:8501/v1/models/translator:predict

`--continuous_batching` decodes requests step by step in one running
batch; `:generate_stream` streams a request's tokens as they are decoded.
Several models: `--model_config_file models.config` (TF Serving's
`ModelServerConfig` text proto). It binds to 127.0.0.1 unless `--host` says
otherwise. SIGTERM (or Ctrl-C) stops taking connections, lets the requests
in flight finish (up to `--graceful_shutdown_seconds`), then exits.
"""

import argparse
import logging
import os
import sys

from keras_attention import native_memory


# The program name in usage lines and errors: how the server was started.
DEFAULT_PROG = "keras-attention serve"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless it has none (None)
    or already names it."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser(prog=DEFAULT_PROG):
    """The server's flags, TF Serving's names; each has help and shows its default."""
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=HelpFormatter,
        description="Serve SavedModels over TensorFlow Serving's REST API. Give "
                    "--model_base_path (with --model_name) or --model_config_file.")
    models = parser.add_argument_group("models (TF Serving's flags)")
    models.add_argument("--model_name", default="default", metavar="NAME",
                        help="name of the model in the URL: /v1/models/NAME")
    models.add_argument("--model_base_path", metavar="DIR",
                        help="folder of numbered versions <base>/<version>/saved_model.pb; "
                             "the highest is served")
    models.add_argument("--model_config_file", metavar="FILE",
                        help="ModelServerConfig text proto listing several models "
                             "(instead of --model_base_path)")
    models.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        metavar="SECONDS",
                        help="seconds between scans for new versions; 0 scans once")
    http = parser.add_argument_group("HTTP")
    http.add_argument("--rest_api_port", type=int, default=8501, metavar="PORT",
                      help="port of the REST API; 0 picks any free port")
    http.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                      help="address to bind; 0.0.0.0 for every interface")
    http.add_argument("--rest_api_num_threads", type=int, default=4, metavar="N",
                      help="model calls that may run at once")
    http.add_argument("--max_request_bytes", type=int, default=32 * 1024 * 1024,
                      metavar="BYTES",
                      help="largest request body accepted (default: %(default)s, 32 MiB)")
    http.add_argument("--max_request_rows", type=int, default=1024, metavar="ROWS",
                      help="most instances (rows) in one request")
    http.add_argument("--graceful_shutdown_seconds", type=float, default=30.0,
                      metavar="SECONDS",
                      help="on SIGTERM or Ctrl-C, how long requests in flight may finish")
    http.add_argument("--access_log", default="-", metavar="FILE",
                      help="file for the JSON access log; '-' is stderr, 'none' is off")
    http.add_argument("--log_level", default="info",
                      choices=["debug", "info", "warning", "error"],
                      help="the server's own log, on stderr")
    http.add_argument("--no_ui", action="store_true",
                      help="serve the REST API alone, without the attention explorer page "
                           "at / and /ui/<model>")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--enable_batching", action="store_true",
                          help="merge concurrent requests into one model call")
    batching.add_argument("--continuous_batching", action="store_true",
                          help="decode :predict requests step by step in one running batch "
                               "that requests join and leave at every step (exports with "
                               "step-level signatures; others as without it)")
    batching.add_argument("--max_batch_size", type=int, default=32, metavar="ROWS",
                          help="most rows in one merged call (--enable_batching) or decoding "
                               "at once (--continuous_batching; a beam request's row counts "
                               "beam_width)")
    batching.add_argument("--steps_per_call", type=int, default=4, metavar="STEPS",
                          help="with --continuous_batching: most greedy decoding steps one "
                               "model call runs while no beam search or stream is in the "
                               "batch (requests join and leave between calls); 1: one "
                               "step a call")
    batching.add_argument("--batch_timeout_micros", type=int, default=2000,
                          metavar="MICROS",
                          help="with --enable_batching: longest a request waits for "
                               "others to join it")
    return parser


def parse_args(argv, prog=DEFAULT_PROG):
    """The command line's flags; a bad value exits with the usage (status 2).

    Example:

    >>> args = parse_args(["--model_base_path", "export/translator", "--enable_batching"])
    >>> args.model_name, args.rest_api_port, args.enable_batching, args.max_batch_size
    ('default', 8501, True, 32)
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if bool(args.model_base_path) == bool(args.model_config_file):
        parser.error("give --model_base_path (with --model_name) or --model_config_file")
    for name in ("rest_api_num_threads", "max_request_bytes", "max_request_rows",
                 "max_batch_size", "steps_per_call"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.batch_timeout_micros < 0 or args.file_system_poll_wait_seconds < 0:
        parser.error("--batch_timeout_micros and --file_system_poll_wait_seconds must be >= 0")
    if not 0 <= args.rest_api_port <= 65535:
        parser.error("--rest_api_port must be in [0, 65535]")
    return args


def _configure_logging(args):
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    access = logging.getLogger("keras_attention.serving.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    if args.access_log == "none":
        access.disabled = True
        return
    handler = logging.StreamHandler(sys.stderr) if args.access_log == "-" \
        else logging.FileHandler(args.access_log)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)


def main(argv=None, prog=DEFAULT_PROG):
    """Parses `argv` (default: sys.argv[1:]) and serves until stopped; returns
    the exit status. `prog` names the program in usage lines and errors."""
    args = parse_args(argv, prog)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_memory.retain_freed_memory()
    try:
        import uvicorn

        from keras_attention.serving.app import ServerOptions, create_app
        from keras_attention.serving.batching import BatchingOptions
        from keras_attention.serving.continuous_batching import ContinuousOptions
    except ImportError as error:
        print(f"{prog}: {error.name} is missing; install the server with "
              "pip install \"keras-attention-kit[serve]\"", file=sys.stderr)
        return 2
    from keras_attention.serving.repository import (ModelConfig, ModelRepository,
                                                    read_model_config_file)

    _configure_logging(args)
    try:
        configs = read_model_config_file(args.model_config_file) if args.model_config_file \
            else [ModelConfig(args.model_name, args.model_base_path)]
    except ValueError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    for config in configs:
        if not os.path.isdir(config.base_path):
            print(f"{prog}: {config.base_path}: no such folder "
                  f"(base path of model {config.name!r})", file=sys.stderr)
            return 2
    repository = ModelRepository(configs, poll_seconds=args.file_system_poll_wait_seconds)
    repository.start()
    options = ServerOptions(
        max_request_bytes=args.max_request_bytes, max_request_rows=args.max_request_rows,
        num_threads=args.rest_api_num_threads, enable_batching=args.enable_batching,
        batching=BatchingOptions(args.max_batch_size, args.batch_timeout_micros),
        continuous_batching=args.continuous_batching,
        continuous=ContinuousOptions(args.max_batch_size, args.steps_per_call),
        explorer=not args.no_ui)
    app = create_app(repository, options)
    config = uvicorn.Config(app, host=args.host, port=args.rest_api_port,
                            log_level=args.log_level, access_log=False,
                            timeout_graceful_shutdown=args.graceful_shutdown_seconds,
                            log_config=None)
    server = uvicorn.Server(config)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m keras_attention.serving.server"))
