"""Model specs and request bodies that several test modules use, each
written once.

Import as ``from specs import ENCODER_DECODER`` (pytest puts ``tests/`` on
``sys.path``). Treat them as read-only: a test that changes one works on a
``copy.deepcopy``. A spec's plain Keras program takes the ``keras`` module,
so that importing this module imports no Keras.
"""

from __future__ import annotations

from typing import Any

#: Epochs of a seed job (one step an epoch) that runs Keras's own loop, past
#: the compiled fit's bound (worker/fitting.py ``COMPILED_MAX_STEPS``): seconds
#: of training, so that a test can act on the job while it trains.
KERAS_LOOP_EPOCHS = 12_000

# -- the seed article's Sequential models (seqlab/examples.py) ---------------

#: One time step in, one value out: 146 parameters.
ONE_TO_ONE: dict[str, Any] = {
    "input_shape": [1, 1],
    "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}],
}
#: One sequence of five steps in, five values out: 170 parameters.
MANY_TO_ONE: dict[str, Any] = {
    "input_shape": [5, 1],
    "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 5}],
}
#: One value out per step (TimeDistributed): 146 parameters.
MANY_TO_MANY: dict[str, Any] = {
    "input_shape": [5, 1],
    "layers": [
        {"type": "LSTM", "units": 5, "return_sequences": True},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
    ],
}

#: Layer dtype policies (issue 7): Keras prints ``Total params: 64
#: (488.00 B)``; 4 bytes a parameter gave 256.00 B.
POLICY_SPEC: dict[str, Any] = {
    "input_shape": [5, 1],
    "layers": [
        {"type": "LSTM", "units": 3, "dtype": "float64"},
        {"type": "Dense", "units": 1, "dtype": "bfloat16"},
    ],
}

# -- graphs (the compact Functional form) ------------------------------------

#: Reference Example A: the encoder's states start the decoder. No
#: ``outputs``: the last entry's call.
ENCODER_DECODER: dict[str, Any] = {
    "inputs": [{"shape": [7, 3]}, {"shape": [5, 4]}],
    "layers": [
        {"type": "LSTM", "units": 8, "return_state": True, "inputs": "input_layer"},
        {
            "type": "LSTM",
            "units": 8,
            "return_sequences": True,
            "inputs": "input_layer_1",
            "initial_state": ["lstm[0][1]", "lstm[0][2]"],
        },
        {"type": "Dense", "units": 2},
    ],
}


#: An encoder-decoder with attention, every entry named as a person would.
SEQ2SEQ: dict[str, Any] = {
    "name": "seq2seq",
    "inputs": [{"name": "source", "shape": [7, 3]}, {"name": "target", "shape": [5, 4]}],
    "layers": [
        {"type": "LSTM", "units": 8, "return_state": True, "return_sequences": True,
         "name": "encoder", "inputs": "source"},
        {"type": "LSTM", "units": 8, "return_sequences": True, "name": "decoder",
         "inputs": "target", "initial_state": ["encoder[0][1]", "encoder[0][2]"]},
        {"type": "Attention", "inputs": ["decoder", "encoder"]},
        {"type": "Concatenate", "inputs": ["decoder", "attention"]},
        {"type": "Dense", "units": 2},
    ],
    "outputs": "dense",
}  # fmt: skip

#: Two inputs (a sequence and a vector), two outputs (a regression and a
#: 3-class softmax), a merge: what list and dict data must reach in order.
TWO_BY_TWO: dict[str, Any] = {
    "name": "two_by_two",
    "inputs": [{"name": "seq", "shape": [4, 2]}, {"name": "extra", "shape": [3]}],
    "layers": [
        {"type": "LSTM", "units": 6, "inputs": "seq"},
        {"type": "Concatenate", "inputs": ["lstm", "extra"]},
        {"type": "Dense", "units": 2, "name": "reg"},
        {
            "type": "Dense",
            "units": 3,
            "activation": "softmax",
            "name": "cls",
            "inputs": "concatenate",
        },
    ],
    "outputs": ["reg", "cls"],
}  # fmt: skip


def encoder_decoder(keras: Any) -> Any:
    """``ENCODER_DECODER`` in plain Keras (in a fresh session, the same names)."""
    layers = keras.layers
    enc_in = keras.Input((7, 3))
    _, h, c = layers.LSTM(8, return_state=True)(enc_in)
    dec_in = keras.Input((5, 4))
    dec = layers.LSTM(8, return_sequences=True)(dec_in, initial_state=[h, c])
    return keras.Model([enc_in, dec_in], layers.Dense(2)(dec))


# -- POST /train bodies --------------------------------------------------------

#: A job whose loss becomes NaN (a learning rate of 10 on huge targets): it fails.
NAN_JOB: dict[str, Any] = {
    "model": {"input_shape": [1], "layers": [{"type": "Dense", "units": 1}]},
    "data": {"x": [[1e3], [2e3]], "y": [[1e6], [-1e6]]},
    "compile": {"optimizer": "sgd", "learning_rate": 10},
    "fit": {"epochs": 500, "batch_size": 2},
}

#: A stateful LSTM, trained and answering in its batch size of 2.
STATEFUL_JOB: dict[str, Any] = {
    "model": {
        "input_shape": [3, 1],
        "batch_size": 2,
        "layers": [
            {"type": "LSTM", "units": 4, "stateful": True},
            {"type": "Dense", "units": 1},
        ],
    },
    "data": {"x": [[[i], [i + 1], [i + 2]] for i in range(4)], "y": [[i] for i in range(4)]},
    "fit": {"epochs": 3, "batch_size": 2},
}


def layer_graph(layer_type: str) -> dict[str, Any]:
    """A graph of one registered layer on its example, called as its
    ``call_form`` says: one tensor, a list, or query/value/key positionally."""
    from seqlab import LAYERS

    layer_cls = LAYERS[layer_type]
    args, shapes = layer_cls.example
    if layer_cls.call_form == "one":
        shapes = [shapes]
    names = [f"in_{i}" for i in range(len(shapes))]
    entry = {"type": layer_type, **args}
    entry["inputs"] = names[0] if layer_cls.call_form == "one" else names
    inputs = [{"name": n, "shape": list(s)} for n, s in zip(names, shapes, strict=True)]
    return {"inputs": inputs, "layers": [entry]}
