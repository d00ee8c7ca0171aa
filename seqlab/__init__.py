"""seqlab: Keras 3 parameter counts and output shapes, without Keras.

Pure standard-library Python. ``analyze(spec)`` walks a Sequential model
spec, or a graph (Functional) spec, the way Keras builds it; ``render_summary`` prints what
``model.summary()`` prints; ``from_keras_json`` reads ``model.to_json()``;
``train_memory`` estimates the memory of training the model.
"""

# Importing the layers fills the registry (LAYERS) before anything uses it.
from . import layers  # noqa: F401
from .analysis import analyze
from .engine import LayerReport
from .engine import ModelReport
from .errors import SpecError
from .graph import GraphReport
from .graph import analyze_graph
from .keras_json import from_keras_json
from .keras_json import is_keras_json
from .memory import TrainMemory
from .memory import train_memory
from .registry import LAYERS
from .registry import Layer
from .summary import render_summary

__all__ = [
    "LAYERS",
    "GraphReport",
    "Layer",
    "LayerReport",
    "ModelReport",
    "SpecError",
    "TrainMemory",
    "analyze",
    "analyze_graph",
    "from_keras_json",
    "is_keras_json",
    "render_summary",
    "train_memory",
]
