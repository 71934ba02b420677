"""The package prepares TensorFlow itself: legacy Keras, and quiet unless asked."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, cli_command


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "BNNZOO_VERBOSE")}
    return {**env, **extra}


def test_importing_bnnzoo_selects_legacy_keras_without_the_user_setting_anything():
    code = ("import bnnzoo, tensorflow as tf, larq as lq; "
            "print(tf.keras.layers.Dense.__module__.split('.')[0]); "
            "print(lq.quantizers.get('bireal_approx_sign').precision)")
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True,
                         text=True, timeout=300, cwd=REPO.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["tf_keras", "1"]


def test_tensorflow_imported_first_without_legacy_keras_is_refused_in_one_sentence():
    """TensorFlow fixes where ``tensorflow.keras`` imports come from when it is
    imported (``_tf_uses_legacy_keras``): then bnnzoo must refuse at once."""
    import types

    import bnnzoo

    keras3 = types.SimpleNamespace(_tf_uses_legacy_keras=False)
    with pytest.raises(ImportError) as refused:
        bnnzoo.check_legacy_keras({"tensorflow": keras3})
    message = str(refused.value)
    assert message.count(". ") == 0 and "import bnnzoo before tensorflow" in message
    assert "TF_USE_LEGACY_KERAS=1" in message
    bnnzoo.check_legacy_keras({})  # TensorFlow not imported yet
    bnnzoo.check_legacy_keras({"tensorflow": types.SimpleNamespace(_tf_uses_legacy_keras=True)})
    import tensorflow  # this process: bnnzoo first, so legacy Keras

    bnnzoo.check_legacy_keras({"tensorflow": tensorflow})


def test_the_api_is_as_quiet_as_the_cli(capfd, monkeypatch):
    """TensorFlow's Python logs below ERROR are off once bnnzoo is imported, and
    XLA's native lines are dropped from stderr where training compiles."""
    import logging

    import tensorflow as tf

    from bnnzoo import quiet

    assert tf.get_logger().getEffectiveLevel() == logging.ERROR
    monkeypatch.delenv("BNNZOO_VERBOSE", raising=False)
    with quiet.native_logs_filtered():
        os.write(2, b"I0000 00:00:1796194811.595847   18441 service.cc:145] XLA service\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called\n")
        os.write(2, b"kept\n")
    assert capfd.readouterr().err == "kept\n"
    monkeypatch.setenv("BNNZOO_VERBOSE", "1")  # asked for: everything
    with quiet.native_logs_filtered():
        os.write(2, b"I0000 00:00:1.0 1 service.cc:145] XLA\n")
    assert capfd.readouterr().err == "I0000 00:00:1.0 1 service.cc:145] XLA\n"


def test_tensorflow_start_up_noise_is_silenced_unless_verbose(tmp_path):
    env = clean_env(BNNZOO_RUNS=str(tmp_path))
    quiet = subprocess.run(cli_command("models", "bireal18", "--json"), env=env,
                           capture_output=True, text=True, timeout=300)
    loud = subprocess.run(cli_command("--verbose", "models", "bireal18", "--json"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert quiet.returncode == loud.returncode == 0
    assert quiet.stderr.strip() == ""
    assert "external/local_" in loud.stderr or "tensorflow" in loud.stderr.lower()
    assert quiet.stdout == loud.stdout


def test_the_installed_bnnzoo_command_is_cli_py(tmp_path):
    """``pip install`` puts a ``bnnzoo`` command beside the interpreter (setup.cfg's
    console script): the same click group as ``python cli.py``, from any folder."""
    command = Path(sys.executable).with_name("bnnzoo")
    assert command.is_file(), "pip install -e . installs the bnnzoo command"
    env = clean_env(BNNZOO_RUNS=str(tmp_path))
    for args in (["--help"], ["train", "--help"]):
        installed = subprocess.run([str(command), *args], env=env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=120)
        local = subprocess.run(cli_command(*args), env=env, capture_output=True, text=True,
                               timeout=120)
        assert installed.returncode == local.returncode == 0, installed.stderr
        assert installed.stdout.startswith("Usage: bnnzoo ")
        assert installed.stdout.replace("Usage: bnnzoo ", "Usage: cli.py ") == local.stdout


def test_autograph_leaves_tf_keras_alone_and_still_converts_larq_layers():
    """bnnzoo.tracing: tf-keras's engine is traced as plain graph code (as
    TensorFlow does for ``keras``), while a layer written outside Keras keeps
    AutoGraph's conversion of its ``call``."""
    import larq as lq
    import tf_keras
    from tensorflow.python.autograph.core import config
    from tensorflow.python.autograph.impl import conversion

    import bnnzoo
    from bnnzoo import tracing

    assert conversion.is_allowlisted(tf_keras.Model.train_step)
    assert conversion.is_allowlisted(tf_keras.layers.Conv2D.call)
    assert not conversion.is_allowlisted(lq.layers.QuantConv2D.call)
    assert not conversion.is_allowlisted(bnnzoo.quantizers.BorderCorrectedQuantConv2D.call)
    rules = len(config.CONVERSION_RULES)
    tracing.keep_autograph_out_of_tf_keras()  # idempotent
    assert len(config.CONVERSION_RULES) == rules


def test_one_import_path_from_the_repository_root_and_elsewhere(tmp_path):
    """From the repository root (where ``zoo/``, ``export/``, ... are folders
    on ``sys.path``) and from anywhere else, the registry and the Keras
    classes are the installed ``bnnzoo.*`` ones; ``import zoo`` is refused with
    the name to use instead of loading a second registry."""
    code = ("from bnnzoo import zoo; import tensorflow as tf; "
            "print(zoo.registry.__file__); print(zoo.model_entry('bireal18').build.__module__); "
            "print(tf.keras.utils.get_registered_object('bnnzoo>AttentionPoint').__module__); "
            "print(len(zoo.list_models()))")
    seen = []
    for cwd in (REPO, tmp_path):
        out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True,
                             text=True, timeout=300, cwd=cwd)
        assert out.returncode == 0, out.stderr
        seen.append(out.stdout.split())
    assert seen[0] == seen[1]
    registry, module, keras_class, count = seen[0]
    assert module == "bnnzoo.zoo.bireal" and keras_class == "bnnzoo.zoo.core" and int(count) > 10
    folders = ["zoo", "export", "training", "quantizers", "datasets"]
    code = (f"for folder in {folders!r}:\n"
            "    try:\n        __import__(folder)\n"
            "    except ImportError as err:\n        print(err)")
    out = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    refusals = out.stdout.strip().splitlines()
    assert [line.split("'")[1] for line in refusals] == folders
    assert all(f"as 'bnnzoo.{folder}'" in line for folder, line in zip(folders, refusals))


def import_graph(packages: bool = False):
    """``bnnzoo`` module -> the ``bnnzoo`` modules it imports, anywhere in its
    source (a function's deferred import counts too), from the source files.
    Packages' ``__init__`` files are left out: they gather their modules (and
    every module imports ``bnnzoo`` first, for tf-keras) unless ``packages``."""
    import ast

    folders = {"bnnzoo": "bnnzoo", "quantizers": "bnnzoo.quantizers", "zoo": "bnnzoo.zoo",
               "datasets": "bnnzoo.datasets", "training": "bnnzoo.training",
               "export": "bnnzoo.export"}
    modules = {}
    for folder, package in folders.items():
        for path in sorted((REPO / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            if packages or path.stem != "__init__":
                modules[name] = (path, package)
    graph = {}
    for name, (path, package) in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_import_cycle_among_the_projects_modules_and_export_never_imports_training():
    graph = import_graph()
    assert "bnnzoo.training.train" in graph and "bnnzoo.export.pipeline" in graph

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for module in graph[todo.pop()] - seen:
                seen.add(module)
                todo.append(module)
        return seen

    cycles = [m for m in graph if m in reachable(m)]
    assert cycles == []
    graph = import_graph(packages=True)  # through a package's re-exports too
    for module in graph:
        if module.startswith(("bnnzoo.export", "bnnzoo.runs", "bnnzoo.evaluation")):
            assert not any(m.startswith("bnnzoo.training") for m in reachable(module)), module
