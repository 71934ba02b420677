"""bnnzoo: binary neural networks from paper to ARM device.

Importing this package prepares the process for the stack it is tested on:
TensorFlow must use legacy Keras (tf-keras), because larq 0.14 and the LCE 0.16
converter speak the Keras 2 API. The variable has to be set before TensorFlow
is first imported, so it is set here, before anything else imports TensorFlow.
TensorFlow's C++ start-up log is silenced unless ``BNNZOO_VERBOSE=1`` (the
CLI's ``--verbose``). Each top-level folder imports only as ``bnnzoo.<folder>``
(``one_import_path``). AutoGraph is kept out of tf-keras's own code, as
TensorFlow already does for ``keras`` (``bnnzoo.tracing``): traces 3x faster.
"""

import os

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

# Register the quantizers and the zoo's layers with Keras, so that models saved
# with them load through plain ``tf.keras.models.load_model`` once ``bnnzoo``
# is imported.
from . import quantizers, zoo  # noqa: E402,F401
