"""The model repository without TensorFlow: a loader that records paths
stands in for `ExportedModel`, so scans, policies and states are checked
fast and exactly."""

import os

import pytest

from keras_attention.serving.errors import InvalidArgument, NotFound
from keras_attention.serving.repository import (AVAILABLE, END, ModelConfig, ModelRepository,
                                                VersionPolicy, read_model_config_file)


class FakeModel:
    def __init__(self, path):
        if not os.path.isfile(os.path.join(path, "variables.ok")):
            raise ValueError(f"{path}: incomplete")
        self.path = path


def write_version(base, version, complete=True):
    folder = os.path.join(base, str(version))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "saved_model.pb"), "wb") as handle:
        handle.write(b"graph")
    if complete:
        with open(os.path.join(folder, "variables.ok"), "w") as handle:
            handle.write("x")
    return folder


def repository(base, policy=VersionPolicy(), labels=None):
    repo = ModelRepository([ModelConfig("m", str(base), policy, labels or {})],
                           poll_seconds=0, loader=FakeModel)
    repo.start()
    return repo


def test_latest_version_is_served_and_hidden_folders_are_not_versions(tmp_path):
    write_version(tmp_path, 1)
    write_version(tmp_path, 3)
    write_version(tmp_path, ".4.partial")
    (tmp_path / "notes").mkdir()
    repo = repository(tmp_path)
    assert repo.get("m").version == 3
    assert [s.version for s in repo.states("m")] == [3]
    with pytest.raises(NotFound, match=r"Specific\(m, 1\)"):
        repo.get("m", 1)
    with pytest.raises(NotFound, match="Latest\\(other\\)"):
        repo.get("other")


@pytest.mark.parametrize("policy,served", [
    (VersionPolicy("latest", 2), [2, 3]),
    (VersionPolicy("specific", versions=(1, 3)), [1, 3]),
    (VersionPolicy("all"), [1, 2, 3]),
])
def test_version_policies(tmp_path, policy, served):
    for version in (1, 2, 3):
        write_version(tmp_path, version)
    repo = repository(tmp_path, policy)
    assert sorted(s.version for s in repo.states("m") if s.state == AVAILABLE) == served
    assert repo.get("m").version == max(served)


def test_a_version_is_loaded_only_after_its_files_settle(tmp_path):
    write_version(tmp_path, 1)
    repo = repository(tmp_path)
    folder = write_version(tmp_path, 2, complete=False)
    repo.scan()  # first sight: wait for a second scan with the same files
    assert repo.get("m").version == 1
    repo.scan()  # settled but cannot load: 1 stays served, 2 reports the failure
    assert repo.get("m").version == 1
    failed = repo.states("m", 2)[0]
    assert failed.state == END and "incomplete" in failed.error
    repo.scan()  # same files: not retried
    with open(os.path.join(folder, "variables.ok"), "w") as handle:
        handle.write("x")
    repo.scan()  # changed: wait for them to settle
    assert repo.get("m").version == 1
    repo.scan()
    assert repo.get("m").version == 2
    assert repo.states("m", 1)[0].state == END  # replaced, so unloaded
    with pytest.raises(NotFound):
        repo.get("m", 1)


def test_labels_and_both_version_and_label(tmp_path):
    write_version(tmp_path, 1)
    write_version(tmp_path, 2)
    repo = repository(tmp_path, VersionPolicy("all"), {"stable": 1})
    assert repo.get("m", label="stable").version == 1
    with pytest.raises(NotFound, match="canary"):
        repo.get("m", label="canary")
    with pytest.raises(InvalidArgument, match="cannot be supplied"):
        repo.get("m", 1, "stable")


def test_model_config_file(tmp_path):
    (tmp_path / "models.config").write_text("""
model_config_list {
  config { name: "a" base_path: "exports/a" model_platform: "tensorflow"
           model_version_policy { specific { versions: 2 versions: 5 } }
           version_labels { key: "stable" value: 2 } }
  config { name: "b" base_path: "/abs/b" model_version_policy { all {} } }
}""")
    a, b = read_model_config_file(str(tmp_path / "models.config"))
    assert a == ModelConfig("a", str(tmp_path / "exports" / "a"),
                            VersionPolicy("specific", versions=(2, 5)), {"stable": 2})
    assert b.base_path == "/abs/b" and b.policy.kind == "all"


@pytest.mark.parametrize("text,words", [
    ("model_config_list { config { name: 'a' } }", "base_path"),
    ("model_config_list { config { name: 'a' base_path: '/x' } "
     "config { name: 'a' base_path: '/y' } }", "twice"),
    ("model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }",
     "onnx"),
    ("model_config_list { config { name: 'a' base_path: '/x' nonsense: 1 } }", "text proto"),
    ("", "no model_config_list"),
])
def test_bad_model_config_files_name_the_problem(tmp_path, text, words):
    path = tmp_path / "models.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=words) as caught:
        read_model_config_file(str(path))
    assert str(path) in str(caught.value)
