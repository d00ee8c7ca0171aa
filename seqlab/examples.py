"""Train requests ready to run: the seed article's three programs, and two
Functional models that go beyond a stack.

Each seed example is exactly the article's script (../shared/seed-scripts/):
the same model, data, batch size, epochs, loss and optimizer. The graph
examples learn to reverse a short sequence: an encoder-decoder whose
encoder's states start the decoder (teacher forcing), and the same with
attention over the encoder's outputs. ``POST /train`` takes
``{"example": name}`` and any field of the request as an override.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

#: ``[i / float(length) for i in range(length)]`` with length 5.
SEQ = [i / 5.0 for i in range(5)]

EXAMPLES: dict[str, dict[str, Any]] = {
    "one_to_one": {
        "description": "Five samples of one time step each; LSTM(5) then Dense(1).",
        "model": {
            "input_shape": [1, 1],
            "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}],
        },
        "data": {"x": [[[v]] for v in SEQ], "y": [[v] for v in SEQ]},
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 1000, "batch_size": 5},
    },
    "many_to_one": {
        "description": "One sequence of five steps in, all five values out at once.",
        "model": {
            "input_shape": [5, 1],
            "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 5}],
        },
        "data": {"x": [[[v] for v in SEQ]], "y": [SEQ]},
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 500, "batch_size": 1},
    },
    "many_to_many": {
        "description": "One sequence of five steps in, one value per step out (TimeDistributed).",
        "model": {
            "input_shape": [5, 1],
            "layers": [
                {"type": "LSTM", "units": 5, "return_sequences": True},
                {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}},
            ],
        },
        "data": {"x": [[[v] for v in SEQ]], "y": [[[v] for v in SEQ]]},
        "compile": {"optimizer": "adam", "loss": "mean_squared_error"},
        "fit": {"epochs": 1000, "batch_size": 1},
    },
}


#: The reversal task of the graph examples: every sequence of ``LENGTH``
#: symbols out of ``SYMBOLS`` (3**5 = 243 samples, all of them: the data is
#: the task itself, generated without randomness), one-hot encoded.
SYMBOLS = 3
LENGTH = 5


def one_hot(symbols: tuple[int, ...]) -> list[list[float]]:
    """Each symbol as a one-hot row of ``SYMBOLS`` floats."""
    return [[1.0 if s == k else 0.0 for k in range(SYMBOLS)] for s in symbols]


def reversal_data() -> dict[str, Any]:
    """``x``: the source sequences and the decoder's input (the reversed
    sequence shifted right by one step, an all-zero start step first:
    teacher forcing); ``y``: the reversed sequences. By input and output name."""
    sequences = list(itertools.product(range(SYMBOLS), repeat=LENGTH))
    start = [0.0] * SYMBOLS
    return {
        "x": {
            "source": [one_hot(s) for s in sequences],
            "decoder_input": [[start, *one_hot(s[::-1])[:-1]] for s in sequences],
        },
        "y": {"next_symbol": [one_hot(s[::-1]) for s in sequences]},
    }


#: The graph examples' inputs and the training both share.
_REVERSAL_INPUTS = [
    {"name": "source", "shape": [LENGTH, SYMBOLS]},
    {"name": "decoder_input", "shape": [LENGTH, SYMBOLS]},
]
# Adam at 0.01 and 100 epochs of 8 batches: per-step accuracy 1.0 on every
# backend tried (JAX and TensorFlow, several seeds), in seconds on a CPU.
_REVERSAL_TRAINING = {
    "compile": {
        "optimizer": "adam",
        "learning_rate": 0.01,
        "loss": "categorical_crossentropy",
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 100, "batch_size": 32},
}

EXAMPLES["encoder_decoder"] = {
    "description": (
        "Reverse a sequence of 5 symbols: an LSTM encoder whose final states start an "
        "LSTM decoder fed the reversed sequence one step behind (teacher forcing)."
    ),
    "model": {
        "name": "encoder_decoder",
        "inputs": _REVERSAL_INPUTS,
        "layers": [
            {"type": "LSTM", "units": 16, "return_state": True, "name": "encoder",
             "inputs": "source"},
            {"type": "LSTM", "units": 16, "return_sequences": True, "name": "decoder",
             "inputs": "decoder_input", "initial_state": ["encoder[0][1]", "encoder[0][2]"]},
            {"type": "Dense", "units": SYMBOLS, "activation": "softmax", "name": "next_symbol"},
        ],
        "outputs": "next_symbol",
    },
    "data": reversal_data(),
    **copy.deepcopy(_REVERSAL_TRAINING),
}  # fmt: skip

EXAMPLES["attention"] = {
    "description": (
        "Reverse a sequence of 5 symbols with attention: the decoder's steps attend over "
        "the encoder's outputs (dot-product Attention), and each step's prediction reads "
        "the decoder state and its attended context."
    ),
    "model": {
        "name": "attention",
        "inputs": _REVERSAL_INPUTS,
        "layers": [
            {"type": "LSTM", "units": 16, "return_sequences": True, "return_state": True,
             "name": "encoder", "inputs": "source"},
            {"type": "LSTM", "units": 16, "return_sequences": True, "name": "decoder",
             "inputs": "decoder_input", "initial_state": ["encoder[0][1]", "encoder[0][2]"]},
            {"type": "Attention", "name": "context", "inputs": ["decoder", "encoder[0][0]"]},
            {"type": "Concatenate", "inputs": ["decoder", "context"]},
            {"type": "Dense", "units": SYMBOLS, "activation": "softmax", "name": "next_symbol"},
        ],
        "outputs": "next_symbol",
    },
    "data": reversal_data(),
    **copy.deepcopy(_REVERSAL_TRAINING),
}  # fmt: skip

#: The seed article's examples (the others are Functional models).
SEED_EXAMPLES = ("one_to_one", "many_to_one", "many_to_many")


def example_request(name: str) -> dict[str, Any]:
    """A deep copy of one example's request (without its description)."""
    request = copy.deepcopy(EXAMPLES[name])
    request.pop("description")
    return request
