"""The task registry: register, look up, build, and its errors."""

import os
import subprocess
import sys

import ml_collections
import pytest

# Registered before each test copies the registry, so the re-import below
# leaves the module and its registration as every other test sees them.
from tests.conftest import REPO_ROOT
from tests.training import classifier_task  # noqa: F401
from tfaction import errors
from tfaction import tasks
from tfaction.tasks import actionformer  # noqa: F401 (registered first)
from tfaction.tasks import actionformer_config
from tfaction.tasks import registry


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))


class _Dummy(tasks.Task):
    def build_model(self):
        return None

    def build_inputs(self, training, *, global_batch_size,
                     input_context=None, epoch=0, seed=0):
        return None

    def build_losses(self, labels, outputs):
        return None


def _config(name, module=""):
    return ml_collections.ConfigDict(
        {"task": {"name": name, "module": module, "width": 3}})


def test_register_get_and_build():
    tasks.register_task("dummy")(_Dummy)
    assert tasks.get_task("dummy") is _Dummy
    assert "dummy" in tasks.registered_tasks()
    task = tasks.build_task(_config("dummy"))
    assert isinstance(task, _Dummy) and task.config.width == 3


def test_unknown_task_lists_known_ones():
    tasks.register_task("alpha")(_Dummy)
    with pytest.raises(errors.ConfigError,
                       match=r"unknown task 'beta'.*registered tasks: .*alpha"):
        tasks.get_task("beta")


def test_same_class_may_register_twice_but_not_another():
    tasks.register_task("dummy")(_Dummy)
    tasks.register_task("dummy")(_Dummy)  # module imported twice
    other = type("Other", (_Dummy,), {})
    with pytest.raises(errors.ConfigError, match="already registered"):
        tasks.register_task("dummy")(other)


def test_build_task_imports_the_configured_module(monkeypatch):
    module = "tests.training.classifier_task"
    monkeypatch.delitem(sys.modules, module, raising=False)
    registry._TASKS.pop("test_feature_classifier", None)
    task = tasks.build_task(_config("test_feature_classifier", module))
    assert type(task).__name__ == "FeatureClassifierTask"


def test_bad_module_and_missing_name_are_config_errors():
    with pytest.raises(errors.ConfigError, match="'no.such.module'"):
        tasks.build_task(_config("x", "no.such.module"))
    with pytest.raises(errors.ConfigError, match="config.task.name is not"):
        tasks.build_task(_config(""))


def test_abstract_methods_are_required():
    incomplete = type("Incomplete", (tasks.Task,), {})
    with pytest.raises(TypeError, match="build_model"):
        incomplete(ml_collections.ConfigDict())


def test_config_schema_of_a_task():
    schema = tasks.config_schema(
        {"name": "actionformer", "module": "tfaction.tasks.actionformer"})
    assert schema is actionformer_config
    assert tasks.config_schema(
        _config("test_feature_classifier").task) is None  # free-form
    tasks.validate_config(_config("test_feature_classifier"))
    with pytest.raises(errors.ConfigError, match="config.task.name is not"):
        tasks.config_schema({"name": ""})


def test_tasks_do_not_import_serving():
    program = ("import sys\n"
               "import tfaction.tasks.actionformer\n"
               "import tfaction.tasks.actionvlad\n"
               "print(sorted(m for m in sys.modules\n"
               "             if m.startswith('tfaction.serving')))\n")
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
