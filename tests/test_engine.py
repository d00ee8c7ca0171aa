import pytest

from seqlab import SpecError
from seqlab import analyze


def names(*layers, input_shape=(10, 3)):
    report = analyze({"input_shape": list(input_shape), "layers": list(layers)})
    return [x.name for x in report.layers], report


def test_names_follow_a_fresh_keras_session():
    got, _ = names(
        {"type": "LSTM", "units": 4, "return_sequences": True},
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2, "return_sequences": True}},
        {"type": "LSTM", "units": 3, "return_sequences": True},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 2}},
        {"type": "Dense", "units": 1, "name": "head"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 1},
    )
    # The LSTM inside Bidirectional takes `lstm_1`; the Dense inside
    # TimeDistributed takes `dense`; an explicit name takes nothing.
    assert got == ["lstm", "bidirectional", "lstm_2", "time_distributed", "head", "flatten",
                   "dense_1"]  # fmt: skip


def test_bidirectional_sublayers_and_merge_modes():
    for mode, shape in [("concat", (None, 10)), ("sum", (None, 5)), (None, [(None, 5), (None, 5)])]:
        _, report = names(
            {"type": "Bidirectional", "merge_mode": mode, "layer": {"type": "LSTM", "units": 5}}
        )
        (bi,) = report.layers
        assert bi.output_shape == shape
        assert bi.params == 360
        assert [s.name for s in bi.sublayers] == ["forward_lstm", "backward_lstm"]


def test_bidirectional_custom_backward_layer():
    _, report = names(
        {
            "type": "Bidirectional",
            "layer": {"type": "LSTM", "units": 5},
            "backward_layer": {"type": "LSTM", "units": 7, "go_backwards": True},
        }
    )
    (bi,) = report.layers
    # Keras reports the forward layer's shape (bidirectional.py), counts both.
    assert (bi.output_shape, bi.params) == ((None, 10), 488)
    assert [s.name for s in bi.sublayers] == ["forward_lstm", "lstm_1"]
    assert bi.formula == "(4 × ((3 + 5) × 5 + 5)) + (4 × ((3 + 7) × 7 + 7)) = 488"


def test_frozen_layers_are_non_trainable():
    _, report = names(
        {"type": "LSTM", "units": 8, "trainable": False},
        {"type": "Dense", "units": 1},
        input_shape=(5, 3),
    )
    assert (report.trainable_params, report.non_trainable_params) == (9, 384)


@pytest.mark.parametrize(
    ("layers", "input_shape", "path", "words"),
    [
        ([{"type": "LSTM", "units": 5}], (5,), "layers.0", "expected ndim=3"),
        ([{"type": "LSTM", "units": 5, "stateful": True}], (5, 1), "layers.0", "batch size"),
        ([{"type": "Conv1D", "filters": 4, "kernel_size": 3, "groups": 3}], (9, 4),
         "layers.0.groups", "divisible"),
        ([{"type": "Conv1D", "filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}],
         (9, 4), "layers.0.strides", "dilation"),
        ([{"type": "Conv1D", "filters": 4, "kernel_size": 7}], (5, 1), "layers.0",
         "zero or negative"),
        ([{"type": "RepeatVector", "n": 2}], (5, 1), "layers.0", "expected ndim=2"),
        ([{"type": "Permute", "dims": [1, 3]}], (5, 1), "layers.0.dims", "permutation"),
        ([{"type": "Reshape", "target_shape": [-1, -1]}], (4, 1), "layers.0.target_shape",
         "at most one"),
        ([{"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1}}], (4,), "layers.0",
         "at least 3"),
        ([{"type": "Dense", "units": 1}], (None,), "layers.0", "known size"),
        ([{"type": "BatchNormalization", "axis": 3}], (4, 2), "layers.0", "Invalid axis"),
        ([{"type": "Bidirectional", "layer": {"type": "GRU", "units": 2},
           "backward_layer": {"type": "GRU", "units": 2}}], (4, 2),
         "layers.0.backward_layer.go_backwards", "go_backwards"),
    ],
)  # fmt: skip
def test_refusals_where_keras_refuses(layers, input_shape, path, words):
    with pytest.raises(SpecError) as info:
        analyze({"input_shape": list(input_shape), "layers": layers})
    assert info.value.path == path
    assert words.lower() in info.value.message.lower()


def test_spec_error_paths_nest():
    assert SpecError("bad", "units").at("layers.1.layer").path == "layers.1.layer.units"
    assert SpecError("bad").at("layers.0").path == "layers.0"


def test_unknown_time_length_gives_unknown_macs():
    _, report = names({"type": "LSTM", "units": 5}, input_shape=(None, 3))
    assert report.layers[0].macs is None and report.macs is None
    assert report.layers[0].params == 180


@pytest.mark.parametrize(
    ("layers", "input_shape", "message"),
    [
        ([{"type": "LSTM", "units": 5}], (5,),
         "Input 0 with name 'None' of layer 'lstm' is incompatible with the layer: "
         "expected ndim=3, found ndim=2. Full shape received: (None, 5)"),
        ([{"type": "Bidirectional", "layer": {"type": "GRU", "units": 2}}], (4,),
         "Input 0 with name 'None' of layer 'bidirectional' is incompatible with the layer: "
         "expected ndim=3, found ndim=2. Full shape received: (None, 4)"),
        ([{"type": "Permute", "dims": [1, 1]}], (5, 1),
         "Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` "
         "must be consecutive and start from 1. Received dims=[1, 1]"),
        ([{"type": "MaxPooling1D", "pool_size": 6}], (4, 5),
         "Computed output size would be zero or negative. Received: `inputs.shape=[None 4 5]`, "
         "`pool_size=[6]`, `strides=(6,)`, `padding=valid`."),
        ([{"type": "Reshape", "target_shape": [-1, 5]}], (12,),
         "The total size of the tensor must be unchanged, however, the input size cannot by "
         "divided by the specified dimensions in target_shape. Received: input_shape=(12,), "
         "target_shape=(-1, 5)"),
    ],
)  # fmt: skip
def test_refusals_quote_keras_word_for_word(layers, input_shape, message):
    """Keras 3.15's texts, as ``keras.Input`` + layers raise them."""
    with pytest.raises(SpecError) as info:
        analyze({"input_shape": list(input_shape), "layers": layers})
    assert info.value.message == message


def test_counts_are_what_a_job_records():
    report = analyze(
        {
            "input_shape": [5, 1],
            "layers": [{"type": "LSTM", "units": 5}, {"type": "Dense", "units": 1}],
        }
    )
    assert report.counts() == {
        "total_params": 146,
        "trainable_params": 146,
        "non_trainable_params": 0,
        "layers": [
            {"name": "lstm", "type": "LSTM", "output_shape": [None, 5], "params": 140},
            {"name": "dense", "type": "Dense", "output_shape": [None, 1], "params": 6},
        ],
    }


@pytest.mark.keras
@pytest.mark.parametrize(("shape", "filters", "kernel"), [((9, 9, 6), 8, 1), ((4, 7, 3), 5, 2)])
def test_time_distributed_conv_lstm1d_on_3d_steps_is_keras_kernel_error(shape, filters, kernel):
    """TimeDistributed calls its layer without the InputSpec check: a
    ConvLSTM1D given 3-D steps fails in one step's convolution, as Keras says."""
    import warnings

    import keras_oracle as oracle

    keras = oracle.import_keras()
    layer = keras.layers.TimeDistributed(keras.layers.ConvLSTM1D(filters, kernel))
    with warnings.catch_warnings(), pytest.raises(ValueError) as keras_error:
        warnings.simplefilter("ignore")
        keras.Sequential([keras.Input(shape), layer])
    reason = str(keras_error.value).split("\x1b[1m")[-1].split("\x1b[0m")[0]
    inner = {"type": "ConvLSTM1D", "filters": filters, "kernel_size": [kernel]}
    spec = {"input_shape": list(shape), "layers": [{"type": "TimeDistributed", "layer": inner}]}
    with pytest.raises(SpecError) as engine_error:
        analyze(spec)
    assert engine_error.value.message == reason
