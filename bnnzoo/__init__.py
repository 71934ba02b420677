"""bnnzoo: binary neural networks from paper to ARM device.

Importing this package prepares the process for the stack it is tested on:
TensorFlow must use legacy Keras (tf-keras), because larq 0.14 and the LCE 0.16
converter speak the Keras 2 API. The variable has to be set before TensorFlow
is first imported, so it is set here, before anything else imports TensorFlow.
TensorFlow's C++ start-up log is silenced unless ``BNNZOO_VERBOSE=1`` (the
CLI's ``--verbose``).
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
if os.environ.get("BNNZOO_VERBOSE") != "1":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

# Register the quantizers and the zoo's layers with Keras, so that models saved
# with them load through plain ``tf.keras.models.load_model`` once ``bnnzoo``
# is imported.
from . import quantizers, zoo  # noqa: E402,F401
