"""The deployment recipes in `deploy/` (TF Serving's Docker image, KServe),
checked without docker or Kubernetes: the configs parse with the servers'
own formats, the commands and manifests point at the folders the training
scripts write and the names they export, and the fixtures' exports keep
the contract those servers rely on (layout, CPU kernels, signatures,
input names, runnable with TensorFlow alone).

The commands and request bodies are parsed out of the READMEs, so a doc
that drifts from the code fails here.
"""

import base64
import importlib
import importlib.util
import json
import os
import re
import shlex

import pytest

from export_check import check_metadata_matches_signatures, run_in_fresh_process
from serving_exports import png_bytes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TFSERVING = os.path.join(REPO, "deploy", "tfserving")
KSERVE = os.path.join(REPO, "deploy", "kserve")
MODELS_CONFIG = os.path.join(TFSERVING, "models.config")
SIGNATURES = {"serving_default", "beam_search"}  # every export's
STEP_SIGNATURES = {"encode", "decode_step", "finish"}  # and its step-level ones
REQUEST_SIGNATURES = SIGNATURES | {"gif_greedy", "gif_beam"}  # and the video export's GIF input
# The image's entrypoint: --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME},
# MODEL_BASE_PATH=/models (tensorflow_serving/tools/docker/Dockerfile).
IMAGE_MODEL_BASE_PATH = "/models"
# KServe's InferenceService name pattern (IsvcNameFmt): no "_".
ISVC_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# The exports the fixtures build, and the README's request values they run on.
FIXTURE_EXPORTS = ("translator", "captioner")


# ------------------------------------------------------------------ the tasks
def _tasks():
    """`{export_name: export folder relative to the repo}` of every training
    task with a command line (the video task joins once it has one)."""
    exports = {}
    for task in ("translation", "captioning", "video", "ocr"):
        if importlib.util.find_spec(f"training.{task}.__main__") is None:
            continue
        module = importlib.import_module(f"training.{task}.__main__")
        config = module.TASK.config_class()  # the dataclass defaults
        workdir = module.TASK.default_workdir(config, module.TASK.default_preset)
        exports[config.export_name] = os.path.join(workdir, "export", config.export_name)
    return exports


EXPORTS = _tasks()


def isvc_name(export_name):
    return export_name.replace("_", "-")


def test_task_export_names_are_the_documented_ones():
    from training.captioning.config import CaptioningConfig
    from training.translation.config import TranslationConfig

    assert TranslationConfig().export_name == "translator"
    assert CaptioningConfig().export_name == "captioner"
    assert {"translator", "captioner"} <= set(EXPORTS)
    assert EXPORTS["translator"] == "runs/translation-main-en-es/export/translator"
    assert EXPORTS["captioner"] == "runs/captioning-main/export/captioner"


# ------------------------------------------------------------ README parsing
def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _commands(readme_path):
    """Every shell command in the README's fenced code blocks, as tokens
    (continuation lines joined; `$PWD`, `$(...)` left unexpanded)."""
    commands = []
    for block in re.findall(r"```(?:bash|shell|sh)\n(.*?)```", _read(readme_path), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(tokens)
    return commands


def _docker_runs():
    """`docker run` commands: `{"ports", "mounts": {dst: src}, "env", "image", "args"}`."""
    runs = []
    takes_value = {"-p", "-v", "-e", "--name", "--mount", "--gpus"}
    for tokens in _commands(os.path.join(TFSERVING, "README.md")):
        if tokens[:2] != ["docker", "run"]:
            continue
        run = {"ports": [], "mounts": {}, "env": {}, "image": None, "args": []}
        rest = iter(tokens[2:])
        for token in rest:
            if token in takes_value:
                value = next(rest)
                if token == "-p":
                    run["ports"].append(value)
                elif token == "-v":
                    src, dst = value.split(":")[:2]
                    run["mounts"][dst] = src
                elif token == "-e":
                    key, _, val = value.partition("=")
                    run["env"][key] = val
            elif token.startswith("-"):
                continue  # --rm, -t, -d ...
            else:
                run["image"], run["args"] = token, list(rest)
        runs.append(run)
    return runs


def _flags(args):
    return dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)


def _host_path(docker_src):
    """A `-v` source as written (`$PWD/...`) -> the path relative to the repo."""
    assert docker_src.startswith("$PWD/"), docker_src
    return docker_src[len("$PWD/"):]


def _requests(readme_path):
    """The README's curl requests: `(model name in the URL, JSON body)`;
    a body read from a file is the preceding `printf FORMAT "$(base64 ...)"`
    that wrote it, filled with a real image's base64."""
    files, requests = {}, []
    image_b64 = base64.b64encode(png_bytes(0)).decode("ascii")
    for tokens in _commands(readme_path):
        if tokens[0] == "printf" and ">" in tokens:
            assert tokens[2].startswith("$(base64 "), tokens
            files[tokens[tokens.index(">") + 1]] = tokens[1].replace("%s", image_b64)
        if tokens[0] != "curl" or "-d" not in tokens:
            continue
        body = tokens[tokens.index("-d") + 1]
        body = files[body[1:]] if body.startswith("@") else body
        (url,) = [t for t in tokens if "/v1/models/" in t]
        match = re.search(r"/v1/models/([^/:]+)(?:/versions/\d+|/labels/[^/:]+)?:predict$", url)
        assert match, url
        requests.append((match.group(1), json.loads(body)))
    assert requests, readme_path
    return requests


def _request_inputs(body):
    """`(signature, {input name: [row values]})` of a TF Serving REST body;
    binary values decoded from `{"b64": ...}`."""
    def value(item):
        return base64.b64decode(item["b64"]) if isinstance(item, dict) else item

    signature = body.get("signature_name", "serving_default")
    assert ("instances" in body) != ("inputs" in body), body
    if "instances" in body:
        rows = body["instances"]
        # The docs name the input in every request, so the names are checkable.
        assert all(isinstance(r, dict) and "b64" not in r for r in rows), body
        inputs = {name: [value(r[name]) for r in rows] for name in rows[0]}
    else:
        assert isinstance(body["inputs"], dict), body
        inputs = {name: [value(v) for v in values] for name, values in body["inputs"].items()}
    return signature, inputs


def _all_requests():
    """`{export name: [(signature, inputs)]}` over both READMEs."""
    found = {}
    for readme, to_export in ((os.path.join(TFSERVING, "README.md"), {n: n for n in EXPORTS}),
                              (os.path.join(KSERVE, "README.md"),
                               {isvc_name(n): n for n in EXPORTS})):
        for model, body in _requests(readme):
            assert model in to_export, f"{readme}: /v1/models/{model} serves no export"
            found.setdefault(to_export[model], []).append(_request_inputs(body))
    return found


# -------------------------------------------------------------- models.config
def _parse_config(text):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_models_config_parses_with_tf_serving_proto():
    config = _parse_config(_read(MODELS_CONFIG))
    entries = config.model_config_list.config
    assert [e.name for e in entries] and {e.name for e in entries} == set(EXPORTS)
    for entry in entries:
        assert entry.base_path == f"/models/{entry.name}"
        assert entry.model_platform == "tensorflow"
        assert entry.model_version_policy.WhichOneof("policy_choice") == "latest"


def test_models_config_reads_in_our_server():
    from keras_attention.serving.repository import read_model_config_file

    models = read_model_config_file(MODELS_CONFIG)
    assert {m.name: m.base_path for m in models} == {n: f"/models/{n}" for n in EXPORTS}
    assert all(m.policy.kind == "latest" and m.policy.count == 1 for m in models)


def test_models_config_commented_label_example_parses(tmp_path):
    """Uncommenting the canary example (in place of the latest policy) gives
    a valid config whose labels name served versions."""
    lines = _read(MODELS_CONFIG).splitlines()
    example = [i for i, line in enumerate(lines)
               if re.match(r"\s*# (model_version_policy|version_labels) ", line)]
    assert example, "models.config lost its version label example"
    owner = max(i for i, line in enumerate(lines[:example[0]]) if "latest {" in line)
    edited = [line.replace("# ", "", 1) if i in example else line
              for i, line in enumerate(lines) if i != owner]
    config = _parse_config("\n".join(edited))
    entry = [e for e in config.model_config_list.config if e.version_labels][0]
    versions = set(entry.model_version_policy.specific.versions)
    assert set(entry.version_labels.values()) <= versions and len(versions) >= 2
    path = tmp_path / "labels.config"
    path.write_text("\n".join(edited))
    from keras_attention.serving.repository import read_model_config_file

    (labelled,) = [m for m in read_model_config_file(str(path)) if m.labels]
    assert labelled.policy.kind == "specific" and labelled.labels == dict(entry.version_labels)


# ------------------------------------------------------- TF Serving's README
def test_docker_commands_mount_exports_where_the_server_looks():
    runs = _docker_runs()
    assert runs
    tags = set()
    single = {}
    for run in runs:
        image, _, tag = run["image"].partition(":")
        assert image == "tensorflow/serving" and re.fullmatch(r"\d+\.\d+\.\d+", tag), \
            f"pin a released tag, not {run['image']!r}"
        tags.add(tag)
        assert "8501:8501" in run["ports"]
        flags = _flags(run["args"])
        if "model_config_file" in flags:
            # The config is mounted where the flag says, and every entry's
            # base_path is a mounted export folder.
            assert _host_path(run["mounts"][flags["model_config_file"]]) == \
                "deploy/tfserving/models.config"
            assert int(flags["model_config_file_poll_wait_seconds"]) > 0
            for entry in _parse_config(_read(MODELS_CONFIG)).model_config_list.config:
                assert _host_path(run["mounts"][entry.base_path]) == EXPORTS[entry.name]
        else:
            name = run["env"]["MODEL_NAME"]
            base = run["env"].get("MODEL_BASE_PATH", IMAGE_MODEL_BASE_PATH)
            assert _host_path(run["mounts"][f"{base}/{name}"]) == EXPORTS[name]
            single[name] = run
    assert set(single) == set(EXPORTS), "one single-model docker command per export"
    assert any("model_config_file" in _flags(r["args"]) for r in runs)
    assert len(tags) == 1, tags


def test_our_server_commands_serve_the_same_folders(tmp_path):
    """`python -m keras_attention.serving` lines parse with its own flags, and
    point at the exports; the sed-made local config reads back to them."""
    from keras_attention.serving.repository import read_model_config_file
    from keras_attention.serving.server import build_parser

    commands = _commands(os.path.join(TFSERVING, "README.md"))
    served = []
    for index, tokens in enumerate(commands):
        if tokens[:3] != ["python", "-m", "keras_attention.serving"]:
            continue
        args = build_parser().parse_args(tokens[3:])
        assert args.rest_api_port == 8501  # the port the curl examples use
        if args.model_base_path:
            assert args.model_base_path == EXPORTS[args.model_name]
            served.append(args.model_name)
            continue
        (sed,) = [c for c in commands[:index] if c[0] == "sed" and c[-1] == args.model_config_file]
        text = _read(os.path.join(REPO, sed[sed.index(">") - 1]))
        for pattern in [sed[i + 1] for i, t in enumerate(sed) if t == "-e"]:
            _, old, new, _ = pattern.split("#")
            text = "\n".join(line.replace(old, new.replace("$PWD", REPO), 1)
                             for line in text.splitlines())
        local = tmp_path / "models.local.config"
        local.write_text(text)
        models = read_model_config_file(str(local))
        assert {m.name: m.base_path for m in models} == \
            {n: os.path.join(REPO, p) for n, p in EXPORTS.items()}
        served.extend(m.name for m in models)
    assert set(served) == set(EXPORTS)


# ------------------------------------------------------------------- KServe
def _manifest(export_name):
    import yaml

    with open(os.path.join(KSERVE, f"{isvc_name(export_name)}.yaml"), encoding="utf-8") as handle:
        (manifest,) = list(yaml.safe_load_all(handle))
    return manifest


@pytest.mark.parametrize("export_name", sorted(EXPORTS))
def test_kserve_manifest(export_name):
    manifest = _manifest(export_name)
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    # The runtime serves --model_name={{.Name}}: the URL's model name.
    name = manifest["metadata"]["name"]
    assert name == isvc_name(export_name) and ISVC_NAME.fullmatch(name)
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"]["name"] == "tensorflow"
    assert re.fullmatch(r"(gs|s3)://[^/]+/.+", model["storageUri"])
    assert model["storageUri"].rstrip("/").endswith("/" + export_name)
    # The same TF Serving release as the Docker recipe.
    assert {model["runtimeVersion"]} == {r["image"].partition(":")[2] for r in _docker_runs()}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(model["resources"][kind])
    assert 0 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    assert predictor["maxReplicas"] >= 1
    mode = manifest["metadata"].get("annotations", {}).get("serving.kserve.io/deploymentMode")
    # Knative's autoscaler takes concurrency/rps; Standard mode's HPA cpu/memory.
    allowed = {"cpu", "memory"} if mode in ("Standard", "RawDeployment") else {"concurrency", "rps"}
    assert predictor["scaleMetric"] in allowed
    assert isinstance(predictor["scaleTarget"], int) and predictor["scaleTarget"] >= 1


def test_kserve_readme_uploads_to_the_storage_uri_and_applies_the_manifests():
    commands = _commands(os.path.join(KSERVE, "README.md"))
    uploaded = {}
    for tokens in commands:
        if tokens[:3] in (["gsutil", "-m", "rsync"], ["aws", "s3", "cp"]):
            src, dst = [t for t in tokens[3:] if not t.startswith("-")]
            (name,) = [n for n, path in EXPORTS.items() if path == src]
            uploaded.setdefault(name, []).append(dst)
        if tokens[:3] == ["kubectl", "apply", "-f"]:
            assert os.path.exists(os.path.join(REPO, tokens[3])), tokens[3]
    assert set(uploaded) == set(EXPORTS)
    for name, destinations in uploaded.items():
        uri = _manifest(name)["spec"]["predictor"]["model"]["storageUri"]
        assert uri in destinations  # the manifest's own bucket
        # Other stores: the same folder under their own scheme.
        path = uri.split("://", 1)[1]
        assert all(d.split("://", 1)[1] == path for d in destinations), destinations


# ------------------------------------------- the contract, on real exports
def test_readme_requests_name_real_signatures_and_inputs():
    """Every request in the READMEs names a signature and the inputs of the
    export it is sent to (read from the export's metadata)."""
    from training.captioning.export import Captioner
    from training.translation.export import Translator

    input_names = {"translator": Translator.input_name, "captioner": Captioner.input_name,
                   "video_captioner": "video_bytes", "text_reader": "image_bytes"}
    requests = _all_requests()
    assert set(FIXTURE_EXPORTS) <= set(requests)
    for name, found in requests.items():
        for signature, inputs in found:
            assert signature in REQUEST_SIGNATURES
            if name in input_names:
                assert set(inputs) == {input_names[name]}, (name, inputs)


def _version_dir(export_base, name):
    model_dir = os.path.join(export_base, name)
    visible = [e for e in os.listdir(model_dir) if not e.startswith(".")]
    assert visible and all(e.isdigit() for e in visible), visible  # only numbered versions
    return os.path.join(model_dir, max(visible, key=int))


@pytest.fixture(scope="module")
def fresh_runs(export_base):
    """Each fixture export run, in a process that cannot import this
    project, on the rows of every README request sent to it (both at once:
    most of the time is TensorFlow's import)."""
    from concurrent.futures import ThreadPoolExecutor

    requests = _all_requests()

    def run(name):
        rows = {}
        for _, inputs in requests[name]:
            for input_name, values in inputs.items():
                rows.setdefault(input_name, []).extend(values)
        ((input_name, values),) = rows.items()
        raw = [v if isinstance(v, bytes) else v.encode("utf-8") for v in values]
        inputs = {input_name: {"bytes": [r.decode("latin-1") for r in raw]}}
        return run_in_fresh_process(_version_dir(export_base, name), inputs, cwd=REPO), \
            input_name, len(raw)

    with ThreadPoolExecutor(len(FIXTURE_EXPORTS)) as pool:
        return dict(zip(FIXTURE_EXPORTS, pool.map(run, FIXTURE_EXPORTS)))


@pytest.mark.parametrize("name", FIXTURE_EXPORTS)
def test_export_contract(export_base, fresh_runs, name):
    """What TF Serving and KServe rely on: `<base>/<name>/<int>/` with
    saved_model.pb and variables/, CPU kernels for every op, and both
    signatures running in TensorFlow alone on the READMEs' own requests."""
    from training.core.export import ops_without_cpu_kernel

    version_dir = _version_dir(export_base, name)
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isfile(os.path.join(version_dir, "variables", "variables.index"))
    assert ops_without_cpu_kernel(version_dir) == []

    out, input_name, batch = fresh_runs[name]
    assert set(out["specs"]) == SIGNATURES | STEP_SIGNATURES
    for signature in SIGNATURES | {"encode"}:
        assert out["specs"][signature]["inputs"] == {
            input_name: {"dtype": "string", "shape": [-1]}}, signature
    for signature in SIGNATURES:
        assert len(out["signatures"][signature]["text"]) == batch
    assert len(out["signatures"]["encode"]["row_limits"]) == batch
    check_metadata_matches_signatures(out)
