"""The Keras backend of a worker's pool process: which one, its caches, its device.

Called before Keras is first imported in a pool child (never in the worker's
main process: TensorFlow and XLA are not fork-safe).
"""

from __future__ import annotations

import importlib.util
import os
import stat
import tempfile

#: Bound of the JAX compilation cache (``SEQLAB_JAX_CACHE_MAX_BYTES``);
#: JAX evicts the least recently used entries past it.
DEFAULT_JAX_CACHE_MAX_BYTES = 1 << 30


def configure_backend() -> str:
    """Pick the Keras backend before Keras is imported, and GPU memory habits.

    ``KERAS_BACKEND`` wins; otherwise JAX where it is installed (its compiled
    steps are several times cheaper for small sequence models), else
    TensorFlow. GPU memory grows on demand instead of being taken whole.
    Returns the backend's name.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    backend = os.environ["KERAS_BACKEND"] = backend_name()
    if backend == "jax":
        configure_jax_cache()
    return backend


def backend_name() -> str:
    """The backend :func:`configure_backend` picks, without importing it:
    ``KERAS_BACKEND``, else ``jax`` where it is installed, else
    ``tensorflow``. The worker's main process publishes it (for the API's
    check of what its backend can train) and never imports a framework."""
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    return "jax" if importlib.util.find_spec("jax") is not None else "tensorflow"


def configure_jax_cache() -> None:
    """Keep JAX's compiled train steps on disk, privately and within a bound.

    The same model trained again (an example, a retry) then skips XLA
    compilation. Compiled programs are code that this process will run, so
    the directory must be the worker user's alone (a shared, predictable
    path under /tmp could be planted by another user).
    """
    import jax

    cache = private_directory(jax_cache_dir())
    max_bytes = int(os.environ.get("SEQLAB_JAX_CACHE_MAX_BYTES", DEFAULT_JAX_CACHE_MAX_BYTES))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_compilation_cache_max_size", max_bytes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def jax_cache_dir() -> str:
    """``SEQLAB_JAX_CACHE``, else ``$XDG_CACHE_HOME/seqlab/jax`` (``~/.cache``)."""
    configured = os.environ.get("SEQLAB_JAX_CACHE")
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "seqlab", "jax")


def private_directory(path: str) -> str:
    """``path``, created with mode 0700, if this user owns it and no one else
    can write to it; otherwise a fresh private directory (and a warning).
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            os.chmod(path, 0o700)
            return path
    except OSError:
        pass
    fallback = tempfile.mkdtemp(prefix="seqlab-jax-")  # 0700, unique
    import warnings

    warnings.warn(
        f"{path} is not a private directory of this user; caching compiled steps in "
        f"{fallback} for this process only.",
        RuntimeWarning,
        stacklevel=2,
    )
    return fallback


def device_name() -> str:
    """The accelerator training runs on, or ``CPU``."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return "CPU" if device.platform == "cpu" else f"{device.device_kind} ({device.platform})"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]
            )
            return str(details.get("device_name", gpus[0].name))
    return "CPU"
