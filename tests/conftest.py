"""Shared pytest setup. Environment first: nothing may import TensorFlow before it."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Two workers, and often a subprocess beside each, share 2 cores: an op
# split over threads only makes them wait on each other. One thread an op
# (workers and every subprocess, which inherit it) took a run of the
# training tests from 165-179 s to 159-162 s on 2 vCPUs.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

# `import harness` from any test module, whatever pytest's import mode.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# The xdist controller runs no test: importing Keras (and TensorFlow, 5 s)
# here would delay the workers' start, so the fixtures import it.
from keras_attention import native_memory  # noqa: E402

# As the package's entry points do: this process and every subprocess (test
# scripts included) keep freed memory instead of faulting it in again.
native_memory.retain_freed_memory()
os.environ.update(native_memory.MALLOC_ENVIRONMENT)

import pytest  # noqa: E402
from shared_build import shared_root  # noqa: E402

DEFAULT_SEED = 1234


def seed_everything(seed=DEFAULT_SEED):
    """Seed Python, numpy and the Keras backend (`keras.utils.set_random_seed`)."""
    import keras

    keras.utils.set_random_seed(seed)


def make_rng(seed=DEFAULT_SEED):
    """A fresh numpy Generator: test data independent of global state."""
    import numpy as np

    return np.random.default_rng(seed)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds."""
    seed_everything()
    yield


@pytest.fixture(scope="session", autouse=True)
def _jax_compilation_cache(tmp_path_factory):
    """The JAX subprocesses of one run share compiled programs through one
    cache (model initializers, the same train step in another process):
    compiling is most of a few-step JAX run. A run's own folder, so each
    run starts empty, as in CI; an entry being written when another
    process reads it is compiled again (JAX warns and goes on)."""
    cache = os.path.join(shared_root(tmp_path_factory), "jax-compilation-cache")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


@pytest.fixture
def rng():
    return make_rng()


@pytest.fixture(autouse=True)
def _restore_dtype_policy():
    """Put the global dtype policy back to float32 after a test that changed it."""
    yield
    import keras

    if keras.config.dtype_policy().name != "float32":
        keras.config.set_dtype_policy("float32")


@pytest.fixture
def dtype_policy():
    """`dtype_policy("mixed_float16")` sets the global policy for this test only."""
    import keras

    def _set(name):
        keras.config.set_dtype_policy(name)
        return keras.config.dtype_policy()

    yield _set
    keras.config.set_dtype_policy("float32")


# Files that run for minutes, mostly in subprocesses (JAX clusters, SIGKILL
# runs, whole training jobs). Sorted by test count (xdist's default) these
# few-test files came last and ran one after the other on one worker while
# the other idled. Collected first (setup.cfg turns xdist's reordering off),
# they start at once and the light files fill the gaps.
LONGEST_FILES = (
    "test_docs_examples.py", "training/test_jax_training.py", "training/test_jax_caption_jobs.py",
    "training/test_resume_sigkill.py", "training/test_video_training.py",
    "training/test_translation_training.py", "training/test_captioning_training.py",
    "serving/test_server.py", "training/test_resume.py", "training/test_precision.py",
)


# Files whose tests share nothing (no module fixture): xdist may hand out
# their tests one by one, so two minutes-long tests of one file run on both
# workers at once. Every other file goes whole to one worker, where its
# module fixtures are built once.
INDEPENDENT_TESTS = (
    "training/test_jax_training.py", "training/test_jax_caption_jobs.py",
    "training/test_resume_sigkill.py", "training/test_export_base.py",
    "layers/test_attention_common.py", "layers/test_attention_decoder_cell.py",
)


def _test_file(nodeid):
    path = nodeid.split("::", 1)[0]
    return path[len("tests/"):] if path.startswith("tests/") else path


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(_test_file(item.nodeid), len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` runs without it
def pytest_xdist_make_scheduler(config, log):
    """xdist's file-by-file scheduling, but one test at a time for the
    files of INDEPENDENT_TESTS. (Its `loadgroup` marks tests by renaming
    their node ids, which pytest 9 no longer lets a plugin do.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FilesOrTests(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            if _test_file(nodeid) in INDEPENDENT_TESTS:
                return nodeid
            return nodeid.split("::", 1)[0]

    return FilesOrTests(config, log)
