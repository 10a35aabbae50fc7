"""The models a server serves, their versions on disk, and their states.

Layout and policies are TF Serving's: each model has a base path holding
numbered version folders (`<base>/<version>/saved_model.pb`); its version
policy is `latest` (the N highest, 1 by default), `specific` (the listed
ones) or `all`; `version_labels` name versions. A poller rescans every
`poll_seconds`:

- a new version is loaded once its files have stayed unchanged between
  two scans and it loads, so a half-copied folder is never served (the
  package's own exporter writes `.N.partial` and renames, which no scan
  sees before the rename);
- a version the policy no longer wants is dropped after its replacement
  is available (requests already running on it finish: they hold it);
- a version that fails to load is retried when its files change.

`ModelRepository` has an example.
"""

import logging
import os
import threading
import time
from typing import NamedTuple

from keras_attention.serving.errors import InvalidArgument, NotFound, Unavailable
from keras_attention.serving.exported_model import ExportedModel, list_versions

LOG = logging.getLogger("keras_attention.serving")

# TF Serving's ModelVersionStatus.State names.
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class VersionPolicy(NamedTuple):
    """`kind` is "latest" (keep the `count` highest), "specific" (`versions`) or "all"."""

    kind: str = "latest"
    count: int = 1
    versions: tuple = ()

    def choose(self, available):
        """The versions to serve out of `available` (ascending ints)."""
        if self.kind == "all":
            return list(available)
        if self.kind == "specific":
            return [v for v in available if v in self.versions]
        return list(available)[-self.count:]


class ModelConfig(NamedTuple):
    """One served model: a name, a base path of versions, a policy, labels."""

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: dict = {}


class ServedVersion:
    """One version of a model and its TF Serving state."""

    def __init__(self, name, version, state=START):
        self.name, self.version, self.state = name, version, state
        self.model = None
        self.error = ""
        self.fingerprint = None


def read_model_config_file(path):
    """TF Serving's `--model_config_file` (a `ModelServerConfig` text proto,
    parsed with TF Serving's own proto) -> `[ModelConfig]`.

    Relative base paths are taken from the config file's folder.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the model config file: {error.strerror}") from error
    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{path}: not a ModelServerConfig text proto: {error}") from error
    if not config.HasField("model_config_list") or not config.model_config_list.config:
        raise ValueError(f"{path}: holds no model_config_list {{ config {{ ... }} }}")
    models, names = [], set()
    folder = os.path.dirname(os.path.abspath(path))
    for index, entry in enumerate(config.model_config_list.config):
        where = f"{path}: config #{index + 1}"
        if not entry.name or not entry.base_path:
            raise ValueError(f"{where}: needs a name and a base_path")
        if entry.name in names:
            raise ValueError(f"{where}: the name {entry.name!r} is used twice")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{where}: model_platform {entry.model_platform!r} is not "
                             "served here (only 'tensorflow')")
        names.add(entry.name)
        policy = VersionPolicy()
        which = entry.model_version_policy.WhichOneof("policy_choice")
        if which == "latest":
            policy = VersionPolicy("latest", max(1, entry.model_version_policy.latest.num_versions))
        elif which == "specific":
            versions = tuple(entry.model_version_policy.specific.versions)
            if not versions:
                raise ValueError(f"{where}: a specific version policy lists no versions")
            policy = VersionPolicy("specific", versions=versions)
        elif which == "all":
            policy = VersionPolicy("all")
        base = entry.base_path if os.path.isabs(entry.base_path) \
            else os.path.join(folder, entry.base_path)
        models.append(ModelConfig(entry.name, base, policy, dict(entry.version_labels)))
    return models


def _fingerprint(version_dir):
    """Every file's (path, size, mtime): unchanged between two scans means
    nobody is still writing the folder."""
    entries = []
    for root, _, files in os.walk(version_dir):
        for file_name in files:
            path = os.path.join(root, file_name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            entries.append((os.path.relpath(path, version_dir), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class ModelRepository:
    """Loads, tracks and unloads the configured models' versions.

    Args:
        configs: `[ModelConfig]`.
        poll_seconds: Seconds between scans of the base paths (TF Serving's
            `--file_system_poll_wait_seconds`); 0 scans only at `start`.
        loader: `path -> model` (`ExportedModel` by default).

    Example (a stand-in loader: the "model" is the version folder's name):

    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> for version in ("1", "2"):   # <base>/<version>/saved_model.pb
    ...     os.makedirs(os.path.join(folder.name, version))
    ...     open(os.path.join(folder.name, version, "saved_model.pb"), "wb").close()
    >>> repository = ModelRepository([ModelConfig("translator", folder.name)], poll_seconds=0,
    ...                              loader=os.path.basename)
    >>> repository.start()   # loads what is there now; poll_seconds=0: no polling
    >>> served = repository.get("translator")   # the highest version (policy: latest 1)
    >>> served.version, served.state, served.model
    (2, 'AVAILABLE', '2')
    >>> repository.get("translator", version=1)
    Traceback (most recent call last):
    ...
    keras_attention.serving.errors.NotFound: Servable not found for request: Specific(translator, 1)
    >>> folder.cleanup()
    """

    def __init__(self, configs, poll_seconds=1.0, loader=ExportedModel):
        self.configs = {config.name: config for config in configs}
        self.poll_seconds = float(poll_seconds)
        self.loader = loader
        self._versions = {name: {} for name in self.configs}  # name -> {version: ServedVersion}
        self._seen = {name: {} for name in self.configs}  # name -> {version: last fingerprint}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    # ------------------------------------------------------------- lifecycle
    def start(self):
        """Loads what is on disk now (no settling wait: a server starts on
        finished exports), then polls in a daemon thread."""
        self.scan(settle=False)
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.scan()
            except Exception:  # a scan must never kill the poller
                LOG.exception("model scan failed")

    # ------------------------------------------------------------------ scan
    def scan(self, settle=True):
        """One pass over every model's base path. With `settle`, a version
        is loaded only when its files equal those of the previous scan."""
        for name, config in self.configs.items():
            on_disk = list_versions(config.base_path)
            wanted = config.policy.choose(on_disk)
            for version in wanted:
                self._consider(config, version, settle)
            self._unload_unwanted(name, wanted)

    def _consider(self, config, version, settle):
        name = config.name
        current = self._versions[name].get(version)
        if current is not None and current.state in (AVAILABLE, LOADING):
            return
        version_dir = os.path.join(config.base_path, str(version))
        fingerprint = _fingerprint(version_dir)
        previous = self._seen[name].get(version)
        self._seen[name][version] = fingerprint
        if settle and fingerprint != previous:
            return  # still being written, or first seen: look again next scan
        if current is not None and current.error and current.fingerprint == fingerprint:
            return  # failed (or was unloaded) with these very files
        served = ServedVersion(name, version, LOADING)
        served.fingerprint = fingerprint
        with self._lock:
            self._versions[name][version] = served
        started = time.perf_counter()
        try:
            model = self.loader(version_dir)
        except Exception as error:  # kept as the version's status, retried on change
            served.state, served.error = END, str(error).splitlines()[0]
            LOG.warning("model %s version %s failed to load: %s", name, version, served.error)
            return
        served.model, served.state = model, AVAILABLE
        LOG.info("model %s version %s available (loaded in %.1f s)", name, version,
                 time.perf_counter() - started)

    def _unload_unwanted(self, name, wanted):
        with self._lock:
            versions = self._versions[name]
            if not any(v.state == AVAILABLE for k, v in versions.items() if k in wanted):
                return  # keep serving the old version until a wanted one is up
            for version, served in versions.items():
                if version not in wanted and served.state == AVAILABLE:
                    # Requests that hold `served` keep its model alive until they finish.
                    served.state, served.model = END, None
                    LOG.info("model %s version %s unloaded", name, version)

    # ----------------------------------------------------------------- query
    def model_names(self):
        return sorted(self.configs)

    def get(self, name, version=None, label=None):
        """The `ServedVersion` a request means; `NotFound` (404) otherwise.

        No version and no label: the highest available version.
        """
        if name not in self.configs:
            raise NotFound(f"Servable not found for request: {_request_text(name, version, label)}")
        if version is not None and label is not None:
            raise InvalidArgument(f"Both model version ({version}) and model version label "
                                  f"({label}) cannot be supplied.")
        if label is not None:
            labels = self.configs[name].labels
            if label not in labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = labels[label]
        with self._lock:
            available = {v: s for v, s in self._versions[name].items() if s.state == AVAILABLE}
            loading = any(s.state == LOADING for s in self._versions[name].values())
        if version is None:
            if not available:
                if loading:
                    raise Unavailable(f"Model {name} is loading; no version is available yet")
                raise NotFound(f"Servable not found for request: {_request_text(name)}")
            return available[max(available)]
        if int(version) not in available:
            raise NotFound(f"Servable not found for request: {_request_text(name, version)}")
        return available[int(version)]

    def states(self, name, version=None):
        """`[ServedVersion]` for a status request (all versions, newest first)."""
        if name not in self.configs:
            raise NotFound(f"Could not find any versions of model {name}")
        with self._lock:
            versions = dict(self._versions[name])
        if version is not None:
            if int(version) not in versions:
                raise NotFound(f"Could not find version {version} of model {name}")
            return [versions[int(version)]]
        if not versions:
            raise NotFound(f"Could not find any versions of model {name}")
        return [versions[v] for v in sorted(versions, reverse=True)]


def _request_text(name, version=None, label=None):
    if label is not None:
        return f"Label({name}, {label})"
    return f"Specific({name}, {version})" if version is not None else f"Latest({name})"
