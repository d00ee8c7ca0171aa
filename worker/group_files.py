"""The ``.keras`` files of a group's trials, from their train states.

A group's trials share one model structure; their files differ only in the
values of its variables (and the learning rate in the optimizer's config).
Keras's ``model.save`` walks the whole object graph of the model for each
file (some 9 ms for the seed's LSTM, most of what finishing a trial would
cost). :class:`StateFiles` walks it once, recording every write Keras's
``_save_state`` makes to its HDF5 store (which variable goes to which
dataset, in order), then writes each trial's file by replaying those writes
with the trial's values: the same calls on Keras's own ``H5IOStore``, the
config serialized by Keras from the model holding the trial's learning
rate, zipped as ``model.save`` zips. Faster still: HDF5 stores each
(small, uncompressed) dataset's values contiguously at a fixed offset, so
the weights file is written once and each trial's is that image with its
values copied in at those offsets (where any dataset is stored otherwise,
each file is replayed). tests/test_sweeping.py loads each file with
``keras.saving.load_model`` and holds it to the lone job's.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any


def _saving_lib() -> Any:
    from keras.src.saving import saving_lib

    return saving_lib


class StateFiles:
    """Writes ``.keras`` files of ``model`` for any train state of it.

    Args:
        model: the model (its variables hold some trial's values: the
            config is read from it).
        variables: Keras's JAX train state's variables, by part (trainable,
            non-trainable, optimizer, metrics), in the state's order.
    """

    def __init__(self, model: Any, variables: Sequence[Sequence[Any]]) -> None:
        saving_lib = _saving_lib()
        self.model = model
        slots = {id(v): (part, i) for part, vs in enumerate(variables) for i, v in enumerate(vs)}

        class Recorder(saving_lib.H5IOStore):  # type: ignore[misc, name-defined]
            """Keras's store, recording its writes instead of making them."""

            def __init__(self) -> None:  # no file: nothing is written
                self.mode = "w"
                self.calls: list[tuple[str, Any, Any]] = []

            def __bool__(self) -> bool:
                return True

            def make(self, path: str, metadata: Any = None) -> Any:
                self.calls.append(("make", path, metadata))
                return self

            def __setitem__(self, key: str, value: Any) -> None:
                self.calls.append(("set", key, value))

        recorder = Recorder()
        saving_lib._save_state(
            model, weights_store=recorder, assets_store=None, inner_path="",
            visited_saveables=set(),
        )  # fmt: skip
        #: Each write: ("make", path, metadata), or ("set", key, (part, index))
        #: for a state variable, or ("value", key, array) for anything else.
        self.calls: list[tuple[str, Any, Any]] = []
        for kind, key, value in recorder.calls:
            if kind == "set" and id(value) in slots:
                self.calls.append(("set", key, slots[id(value)]))
            elif kind == "set":
                self.calls.append(("value", key, value))
            else:
                self.calls.append((kind, key, value))
        self.image: bytes | None = None
        self.places: dict[tuple[int, int], tuple[int, Any, tuple[int, ...]]] = {}
        self.configs: dict[float, tuple[str, str]] = {}

    def _replayed(self, state: Sequence[Sequence[Any]]) -> bytes:
        """The weights file Keras's writes make with ``state``'s values."""
        out = io.BytesIO()
        store = _saving_lib().H5IOStore(out, mode="w")
        try:
            for kind, key, value in self.calls:
                if kind == "make":
                    store.make(key, metadata=value)
                elif kind == "set":
                    part, index = value
                    store[key] = state[part][index]
                else:
                    store[key] = value
        finally:
            store.close()
        return out.getvalue()

    def _weights(self, state: Sequence[Sequence[Any]]) -> bytes:
        """The weights file (``model.weights.h5``) of ``state``."""
        import h5py
        import numpy as np

        if self.image is None:
            self.image = self._replayed(state)
            with h5py.File(io.BytesIO(self.image), "r") as h5:
                path = ""
                for kind, key, value in self.calls:
                    if kind == "make":
                        path = f"{key}/vars" if key else "vars"
                    elif kind == "set":
                        dataset = h5[f"{path}/{key}"]
                        offset = dataset.id.get_offset()
                        if offset is None:  # not contiguous: replay every file
                            self.places.clear()
                            break
                        self.places[value] = (offset, dataset.dtype, dataset.shape)
            return self.image
        if not self.places:
            return self._replayed(state)
        image = bytearray(self.image)
        for (part, index), (offset, dtype, shape) in self.places.items():
            values = np.ascontiguousarray(state[part][index], dtype=dtype)
            if values.shape != shape:
                raise ValueError(f"state {part}.{index} has shape {values.shape}, not {shape}")
            raw = values.tobytes()
            image[offset : offset + len(raw)] = raw
        return bytes(image)

    def write(self, state: Sequence[Sequence[Any]]) -> bytes:
        """The ``.keras`` bytes of the model with ``state``'s values (NumPy
        arrays, by part as ``variables``); its config as the model holds it
        now (set the trial's learning rate on it first)."""
        saving_lib = _saving_lib()
        # Trials of one learning rate share a config (the rest is the structure's).
        rate = float(self.model.optimizer.learning_rate)
        if rate not in self.configs:
            self.configs[rate] = saving_lib._serialize_model_as_json(self.model)
        config_json, metadata_json = self.configs[rate]
        weights = self._weights(state)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            with zf.open(saving_lib._METADATA_FILENAME, "w") as f:
                f.write(metadata_json.encode())
            with zf.open(saving_lib._CONFIG_FILENAME, "w") as f:
                f.write(config_json.encode())
            zf.writestr(saving_lib._VARS_FNAME_H5, weights)
            # As model.save: an asset store, empty for these models.
            saving_lib.DiskIOStore(saving_lib._ASSETS_DIRNAME, archive=zf, mode="w").close()
        return out.getvalue()
