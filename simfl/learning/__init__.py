"""Federated learning: data, partitions, models, training, gradient similarity.

Only the torch-free parts are imported here, so ``import simfl.learning`` (and the
engine, which needs just the ``Trainer`` protocol) stays light; import
``simfl.learning.models``, ``.trainer`` and ``.similarity`` for the torch parts.
"""

from simfl.learning.data import ImageDataset, load_dataset, public_private_split
from simfl.learning.partition import class_counts, dirichlet_partition
from simfl.learning.protocol import RoundMetrics, Trainer

__all__ = ["ImageDataset", "RoundMetrics", "Trainer", "class_counts", "dirichlet_partition",
           "load_dataset", "public_private_split"]
