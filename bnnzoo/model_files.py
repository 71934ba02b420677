"""Keras model files (``.h5`` or SavedModel) of any larq model, larq-zoo's included.

larq-zoo's models use functions it registers with Keras when it is imported
(QuickNet's ``blurpool_initializer``, XNOR-Net's ``xnor_weight_scale``,
DoReFa-Net's quantizers), so it is imported before a file is read. Keras 2.16
saves such a function into an ``.h5`` file as ``{"class_name": "function",
"config": NAME, ...}``, which its own ``.h5`` reader then cannot turn back into
the function ("Unknown initializer: 'function'", "Unknown quantization
function"). For those files the configuration is read from the file, each such
entry replaced by the registered function it names, the model built from it
and the weights read into it. (SavedModels load as they are.)
"""

import json
from pathlib import Path

import tensorflow as tf

from bnnzoo import checksums
from bnnzoo.errors import UserError


class ModelFileError(UserError):
    """A file that is not a Keras model this project can read."""


def _registered_functions(config):
    """``config`` with every serialized function replaced by the registered one."""
    if isinstance(config, dict):
        if config.get("class_name") == "function" and isinstance(config.get("config"), str):
            found = tf.keras.utils.get_registered_object(config["config"])
            if found is None:
                raise ModelFileError(
                    f"The model uses the function {config['config']!r}, which is not registered "
                    "with Keras: import the package that defines it before loading.")
            return found
        return {key: _registered_functions(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_registered_functions(value) for value in config]
    return config


def _has_functions(config) -> bool:
    if isinstance(config, dict):
        return config.get("class_name") == "function" or any(map(_has_functions, config.values()))
    return isinstance(config, list) and any(map(_has_functions, config))


def load_model_file(path: Path) -> tf.keras.Model:
    """The Keras model saved at ``path`` (``.h5`` file or SavedModel folder);
    a file whose recorded SHA-256 it no longer has is refused
    (``bnnzoo.checksums.ChecksumMismatch``)."""
    import larq_zoo  # noqa: F401  (registers larq-zoo's functions with Keras)

    path = Path(path)
    if path.is_file():
        checksums.verify(path)
    try:
        if path.is_file() and path.suffix in (".h5", ".hdf5", ".keras"):
            import h5py

            with h5py.File(path, "r") as saved:
                raw = saved.attrs.get("model_config")
            config = json.loads(raw) if raw is not None else None
            if config is not None and _has_functions(config):
                model = tf.keras.models.model_from_config(_registered_functions(config))
                model.load_weights(path)
                return model
        return tf.keras.models.load_model(path, compile=False)
    except ModelFileError:
        raise
    except Exception as err:  # noqa: BLE001  (h5py, protobuf, ... all mean "unreadable")
        raise ModelFileError(f"Cannot load a Keras model from {path}: {err}") from None
