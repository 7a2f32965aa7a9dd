"""GNN encoders that embed a computation graph (PyTorch Geometric)."""

from gennape.encoder.features import FEATURE_NAMES, FEATURIZER_VERSION, NUM_FEATURES, featurize, to_data
from gennape.encoder.gnn import CONVS, DIRECTIONS, READOUTS, CGEncoder

__all__ = [
    "CGEncoder", "CONVS", "DIRECTIONS", "READOUTS",
    "FEATURE_NAMES", "FEATURIZER_VERSION", "NUM_FEATURES", "featurize", "to_data",
]
