"""The training memory estimate (seqlab/memory.py): its arithmetic by hand
on small models, a rule for every registered layer, the optimizer slots
against Keras, and the whole against a measured training step."""

import doctest
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from call_oracle import call_report
from call_oracle import engine_layer

import seqlab.memory
from seqlab import LAYERS
from seqlab import analyze
from seqlab.memory import KEPT
from seqlab.memory import OPTIMIZER_SLOTS
from seqlab.memory import OPTIMIZERS
from seqlab.memory import kept_bytes
from seqlab.memory import train_memory

ROOT = Path(__file__).resolve().parent.parent


def model(*layers, input_shape, **spec):
    return analyze({"input_shape": list(input_shape), "layers": list(layers), **spec})


def test_doctests():
    assert doctest.testmod(seqlab.memory).failed == 0


@pytest.mark.parametrize("layer_type", sorted(LAYERS))
def test_every_registered_layer_has_a_rule(layer_type):
    # A new layer without a rule of what it keeps fails here.
    args, input_shape = LAYERS[layer_type].example
    if LAYERS[layer_type].call_form == "one":
        report = model({"type": layer_type, **args}, input_shape=input_shape)
        (layer,) = report.layers
    else:  # several tensors: the layer's report for one call, as in a graph
        shapes = [(None, *s) for s in input_shape]
        layer = call_report(engine_layer(layer_type, args), shapes, {})
    assert layer_type in KEPT
    kept = kept_bytes(layer)
    assert isinstance(kept, int) and kept >= 0


def test_the_rules_name_only_registered_layers():
    assert set(KEPT) == set(LAYERS)


def test_every_optimizer_of_the_api_has_its_slots():
    assert set(OPTIMIZER_SLOTS) == set(OPTIMIZERS)


def test_dense_by_hand():
    # Dense(2) on (5, 1): kernel 1 × 2 + bias 2 = 4 float32 parameters.
    m = train_memory(model({"type": "Dense", "units": 2}, input_shape=[5, 1]), batch_size=3)
    assert (m.weights, m.gradients, m.optimizer_state) == (16, 16, 32)  # Adam: 2 slots
    # Per sample: x 5 values, the target 10 values three times (target, loss
    # residual, output gradient), the Dense output 10 values; 4 bytes each.
    assert m.activations == 3 * (5 + 3 * 10 + 10) * 4
    assert m.total == 16 + 16 + 32 + 540
    assert m.to_dict() == {
        "batch_size": 3, "optimizer": "adam", "weights": 16, "gradients": 16,
        "optimizer_state": 32, "activations": 540,
    }  # fmt: skip


def test_lstm_by_hand():
    # LSTM(3) on (4, 2): 4 × ((2 + 3) × 3 + 3) = 72 parameters.
    m = train_memory(model({"type": "LSTM", "units": 3}, input_shape=[4, 2]), 2, "sgd")
    assert (m.weights, m.gradients, m.optimizer_state) == (288, 288, 0)
    # x: 8 values; target (3 values) × 3; the LSTM: T × (D + 13 H) + its
    # output = 4 × (2 + 39) + 3 = 167 values.
    assert m.activations == 2 * (8 + 9 + 167) * 4


def test_return_sequences_adds_the_stacked_output():
    one = model({"type": "GRU", "units": 2}, input_shape=[3, 1]).layers[0]
    seq = model({"type": "GRU", "units": 2, "return_sequences": True}, input_shape=[3, 1]).layers[0]
    # 3 × (1 + 18 × 2) = 111 residuals either way, plus the output.
    assert (kept_bytes(one), kept_bytes(seq)) == ((111 + 2) * 4, (111 + 6) * 4)


def test_conv_lstm_counts_units_as_length_times_filters():
    layer = model(
        {"type": "ConvLSTM1D", "filters": 2, "kernel_size": 3}, input_shape=[4, 6, 1]
    ).layers[0]
    # Each step: input 6 × 1, state 4 × 2 = 8 (valid convolution: 6 − 2).
    assert kept_bytes(layer) == (4 * (6 + 17 * 8) + 8) * 4


def test_wrappers_by_hand():
    td = model(
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}}, input_shape=[3, 4]
    ).layers[0]
    assert kept_bytes(td) == 3 * 2 * 4  # the Dense's 2 outputs, at each of 3 steps
    bi = model(
        {"type": "Bidirectional", "layer": {"type": "SimpleRNN", "units": 2}}, input_shape=[3, 1]
    ).layers[0]
    # Each direction 3 × (1 + 4 × 2) + 2 = 29 values; the concatenation 4.
    assert kept_bytes(bi) == (29 + 29 + 4) * 4
    unmerged = model(
        {"type": "Bidirectional", "merge_mode": None, "layer": {"type": "SimpleRNN", "units": 2}},
        input_shape=[3, 1],
    ).layers[0]
    assert kept_bytes(unmerged) == (29 + 29) * 4


@pytest.mark.parametrize(
    ("layer", "kept"),
    [
        ({"type": "Flatten"}, 0),
        ({"type": "Reshape", "target_shape": [12]}, 0),
        ({"type": "Dropout", "rate": 0.0}, 0),
        ({"type": "Dropout", "rate": 0.5}, 2 * 12 * 4),
        ({"type": "SpatialDropout1D", "rate": 0.5}, 2 * 12 * 4),
        ({"type": "LayerNormalization"}, 2 * 12 * 4),
        ({"type": "BatchNormalization"}, 2 * 12 * 4),
        ({"type": "Dense", "units": 5, "activation": "tanh"}, 3 * 5 * 4),
        ({"type": "Dense", "units": 5, "dtype": "mixed_float16"}, 3 * 5 * 2),
        ({"type": "Dense", "units": 5, "dtype": "float64"}, 3 * 5 * 8),
        ({"type": "MaxPooling1D"}, 1 * 4 * 4),
        ({"type": "GlobalAveragePooling1D"}, 4 * 4),
        ({"type": "Permute", "dims": [2, 1]}, 12 * 4),
    ],
)
def test_what_a_layer_keeps(layer, kept):
    (report,) = model(layer, input_shape=[3, 4]).layers
    assert kept_bytes(report) == kept


def test_weights_in_their_dtype_and_only_trainable_ones_train():
    report = model(
        {"type": "Dense", "units": 4, "trainable": False},  # 3 × 4 + 4 = 16, frozen
        {"type": "Dense", "units": 2, "dtype": "float16"},  # 4 × 2 + 2 = 10, 2 bytes
        {"type": "Dense", "units": 1, "dtype": "mixed_bfloat16"},  # 2 + 1 = 3, float32
        input_shape=[3],
    )
    m = train_memory(report, 1, "rmsprop")
    assert m.weights == 16 * 4 + 10 * 2 + 3 * 4
    assert m.gradients == 10 * 2 + 3 * 4
    assert m.optimizer_state == m.gradients  # one slot
    # x 3 × 4; target 1 × 4 × 3; outputs 4 × 4 + 2 × 2 + 1 × 2 (bfloat16).
    assert m.activations == 12 + 12 + 16 + 4 + 2


def test_input_dtype_sets_the_batch_bytes():
    report = model({"type": "Embedding", "input_dim": 10, "output_dim": 2}, input_shape=[5])
    as_int = train_memory(report, 1, input_dtype="uint8").activations
    as_float = train_memory(report, 1).activations
    assert as_float - as_int == 5 * (4 - 1)


def test_batch_size_defaults_and_fixed():
    report = model({"type": "Dense", "units": 1}, input_shape=[2])
    assert train_memory(report).batch_size == 32
    assert train_memory(report, 7).batch_size == 7
    fixed = model({"type": "Dense", "units": 1}, input_shape=[2], batch_size=4)
    assert train_memory(fixed, 7).batch_size == 4
    per_sample = train_memory(report, 1).activations
    assert train_memory(report, 7).activations == 7 * per_sample


def test_unknown_length_leaves_activations_unknown():
    report = model({"type": "LSTM", "units": 4}, input_shape=[None, 2])
    m = train_memory(report, 8)
    assert m.activations is None and m.total is None
    assert m.static == m.weights + m.gradients + m.optimizer_state > 0


def test_the_issue_case_is_terabytes():
    m = train_memory(model({"type": "LSTM", "units": 200_000}, input_shape=[5, 1]))
    # 160,001,600,000 float32 parameters, a gradient and two Adam slots each.
    assert m.static == 160_001_600_000 * 4 * 4


# -- against Keras ------------------------------------------------------------

MIXED = {
    "input_shape": [6, 3],
    "layers": [
        {"type": "LSTM", "units": 5, "return_sequences": True},
        {"type": "BatchNormalization"},
        {"type": "Dense", "units": 4, "dtype": "float16"},
        {"type": "Dense", "units": 2, "trainable": False},
        {"type": "Flatten"},
        {"type": "Dense", "units": 1, "dtype": "mixed_bfloat16"},
    ],
}


@pytest.mark.keras
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_static_part_is_keras_own(optimizer):
    """Weights, gradients (the trainable variables) and optimizer slots,
    byte for byte as Keras creates them."""
    import numpy as np
    from keras_oracle import import_keras

    keras = import_keras()
    from worker.builder import build_model

    net = build_model(MIXED)
    opt = keras.optimizers.get(optimizer)
    opt.build(net.trainable_variables)

    def nbytes(variables):
        return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)

    m = train_memory(analyze(MIXED), optimizer=optimizer)
    assert m.weights == nbytes(net.weights)
    assert m.gradients == nbytes(net.trainable_variables)
    # Besides the slots, an optimizer holds scalars (iterations, learning rate).
    assert m.optimizer_state == nbytes(v for v in opt.variables if len(v.shape))


#: Trains one step of ``spec`` at ``batch`` on JAX, printing the growth of
#: peak resident memory over the resident memory before the step.
PROBE = """
import json, os, sys
import numpy as np
from worker.builder import build_model
spec, batch = json.loads(sys.argv[1]), int(sys.argv[2])
net = build_model(spec)
net.compile(optimizer="adam", loss="mse")
x = np.random.rand(batch, *spec["input_shape"]).astype("float32")
y = np.random.rand(batch, *net.output_shape[1:]).astype("float32")
# Reset the peak (VmHWM) to the resident memory now (Linux >= 4.0): an
# import's peak must not hide the step's.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
with open("/proc/self/statm") as f:
    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
net.train_on_batch(x, y)
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(peak - before)
"""

MEASURED = {
    "lstm": {"input_shape": [100, 32], "layers": [{"type": "LSTM", "units": 256}]},
    "mixed": {
        "input_shape": [100, 32],
        "layers": [
            {"type": "Conv1D", "filters": 64, "kernel_size": 3, "activation": "relu"},
            {"type": "BatchNormalization"},
            {"type": "Dropout", "rate": 0.2},
            {
                "type": "Bidirectional",
                "layer": {"type": "LSTM", "units": 64, "return_sequences": True},
            },
            {"type": "LayerNormalization"},
            {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 8}},
        ],
    },
}


def peak_growths(spec, batches):
    """The step's peak growth at each batch size, each probe a process of its
    own, all at once (each measures its own peak)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT),
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}  # fmt: skip
    probes = [
        subprocess.Popen([sys.executable, "-c", PROBE, json.dumps(spec), str(batch)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=ROOT)
        for batch in batches
    ]  # fmt: skip
    growths = []
    for probe in probes:
        out, err = probe.communicate(timeout=300)
        assert probe.returncode == 0, err[-3000:]
        growths.append(int(out.split()[-1]))
    return growths


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_activations_within_a_factor_of_a_measured_step(name):
    """The growth of a training step's peak memory from 64 to 512 samples a
    batch (the static part and XLA's programs cancel out) is within a factor
    of 1.5 of the estimate's (0.76 to 1.25 when calibrated, JAX on a CPU)."""
    spec = MEASURED[name]
    large, small = peak_growths(spec, (512, 64))
    measured = large - small
    report = analyze(spec)
    estimated = train_memory(report, 512).activations - train_memory(report, 64).activations
    assert estimated / 1.5 <= measured <= estimated * 1.5, (measured, estimated)
