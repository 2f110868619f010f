"""Semi-supervised FL (SEMI, Section V-B): devices receive unlabelled samples and label them
themselves. As the paper does for SEMI, the amounts and resources come from FIMI's
optimiser; the samples come from the diffusion model but reach the devices without their
labels, so nothing steers them to a device's missing classes: each device gets its amount
spread evenly over the classes (as `fimi-no-oa`). Every round a device labels them with the
global model it starts from and trains on its local data plus the samples labelled with
confidence >= 0.95, FixMatch's threshold (Sohn et al., NeurIPS 2020), a standard
pseudo-labelling stand-in for the method of the paper's reference [21]. The energy model
charges all D_loc + D_gen samples as trained, as for FIMI: an upper bound, since a sample
below the threshold costs its device only the labelling forward pass."""

from __future__ import annotations

from typing import Any

import torch

from simfl.policies.ablations import FimiNoOa
from simfl.learning.protocol import TrainingData


class Semi(FimiNoOa):
    """FIMI's amounts, spread evenly over classes, trained through confident pseudo-labels."""

    name = "semi"
    confidence = 0.95  # FixMatch's threshold

    def training_set(self, data: TrainingData) -> tuple[Any, Any]:
        """Local data plus the synthetic samples the global model (loaded in
        `data.model`) labels with softmax confidence >= `confidence`, with those labels;
        the generator's labels are never read."""
        x, y, n_loc = data.x, data.y, data.n_local
        if n_loc == len(y):
            return x, y
        unlabelled = x[n_loc:]
        model = data.model
        model.eval()
        try:
            # no_grad, not inference_mode: the labels are later saved for backward
            with torch.no_grad(), data.autocast:
                probs = torch.softmax(model(unlabelled).float(), dim=1)
        finally:
            model.train()
        confidence, pseudo = probs.max(dim=1)
        keep = confidence >= self.confidence
        return torch.cat([x[:n_loc], unlabelled[keep]]), torch.cat([y[:n_loc], pseudo[keep]])
