"""The seed article's three programs, as train requests.

Each is exactly the article's script (../shared/seed-scripts/): the same
model, data, batch size, epochs, loss and optimizer. ``POST /train`` takes
``{"example": name}`` and any field of the request as an override.
"""

from __future__ import annotations

import copy
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


def example_request(name: str) -> dict[str, Any]:
    """A deep copy of one example's request (without its description)."""
    request = copy.deepcopy(EXAMPLES[name])
    request.pop("description")
    return request
