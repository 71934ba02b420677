"""bnnzoo: binary neural networks from paper to ARM device.

Importing this package prepares the process for the stack it is tested on:
TensorFlow must use legacy Keras (tf-keras), because larq 0.14 and the LCE 0.16
converter speak the Keras 2 API. The variable has to be set before TensorFlow
is first imported, so it is set here, before anything else imports TensorFlow.
TensorFlow's C++ start-up log and the Python logs below ERROR are silenced
unless ``BNNZOO_VERBOSE=1`` (the CLI's ``--verbose``). Each top-level folder imports only as ``bnnzoo.<folder>``
(``one_import_path``). AutoGraph is kept out of tf-keras's own code, as
TensorFlow already does for ``keras`` (``bnnzoo.tracing``): traces 3x faster.
"""

import os
import sys

LEGACY_KERAS_FIRST = (
    "bnnzoo needs legacy Keras (tf-keras), which TensorFlow chooses when it is first "
    "imported: import bnnzoo before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the "
    "environment before Python starts.")


def check_legacy_keras(modules=sys.modules) -> None:
    """Refuse, in one sentence, a TensorFlow imported before ``bnnzoo`` without
    ``TF_USE_LEGACY_KERAS``. TensorFlow reads the variable once, while it is
    imported: it then puts Keras 3's package first on ``tensorflow.__path__``
    (where ``from tensorflow.keras... import`` looks) and imports Keras 3's
    optimizers; setting the variable later would send ``tf.keras`` to tf-keras
    but such imports to Keras 3, two Kerases in one process (larq's own
    ``from tensorflow.keras.optimizers.legacy import Optimizer`` then fails deep
    inside larq)."""
    tf = modules.get("tensorflow")
    if tf is not None and getattr(tf, "_tf_uses_legacy_keras", True) is False:
        raise ImportError(LEGACY_KERAS_FIRST)


check_legacy_keras()
os.environ["TF_USE_LEGACY_KERAS"] = "1"
if os.environ.get("BNNZOO_VERBOSE") != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"


def one_import_path(name: str) -> None:
    """Refuse a top-level folder imported under its own name (``import zoo``
    from the repository root): that would be a second copy of the modules,
    with its own model registry, and tf-keras would register the ``bnnzoo>``
    layer classes again to the copy. Installed, the folders are ``bnnzoo.zoo``,
    ``bnnzoo.export``, ... (setup.cfg), and only those names import."""
    if not name.startswith("bnnzoo."):
        raise ImportError(f"Import {name!r} as 'bnnzoo.{name}' (e.g. `from bnnzoo import {name}`"
                          f"); the folder {name}/ is installed as part of bnnzoo "
                          "(pip install -e .).")


from .tracing import keep_autograph_out_of_tf_keras  # noqa: E402

keep_autograph_out_of_tf_keras()


def quiet_python_logs() -> None:
    """What TensorFlow, tf-keras and absl log below ERROR stays unsaid:
    AutoGraph's "please report this" warnings on larq's layers, "compiled
    metrics have yet to be built" on every loaded model, TFDS's notes; and the
    legacy-format warning on the HDF5 files the project writes on purpose
    (LCE's converter reads Keras 2 models). Called on import unless
    ``BNNZOO_VERBOSE=1`` (the CLI's ``--verbose``)."""
    import logging
    import warnings

    import absl.logging
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)  # made first: an interactive session's sets INFO
    absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")


if os.environ.get("BNNZOO_VERBOSE") != "1":
    quiet_python_logs()

# Register the quantizers and the zoo's layers with Keras, so that models saved
# with them load through plain ``tf.keras.models.load_model`` once ``bnnzoo``
# is imported.
from . import quantizers, zoo  # noqa: E402,F401
