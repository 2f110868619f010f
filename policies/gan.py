"""GAN baseline (Section V-B): FIMI's optimiser and water-filling, but the images come
from a conditional GAN instead of the diffusion model. The ablation "w/o DM" of
Fig. 5(e) is the same policy under its ablation name."""

from __future__ import annotations

from simfl.policies.fimi import Fimi


class Gan(Fimi):
    """FIMI with a conditional GAN as the generator."""

    name = "gan"
    generator = "gan"


class FimiNoDm(Gan):
    """Ablation w/o DM (Fig. 5e): the diffusion model replaced by the GAN."""

    name = "fimi-no-dm"
