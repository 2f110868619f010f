"""The server's generative models (paper step S2): a class-conditional DDPM with
classifier-free guidance and a conditional DCGAN-style GAN, trained on the public split,
checkpointed under the cache directory, served through an on-disk pool of images.

    from simfl.generative.train import train_generator, load_generator
    from simfl.generative.pool import SynthesisService
    from simfl.generative.evaluate import evaluate_generator

Modules import torch; this package itself does not, so `import simfl.generative` is cheap.
"""

from simfl.generative.configs import CONFIG_NAMES, CONFIGS, KINDS

__all__ = ["CONFIGS", "CONFIG_NAMES", "KINDS"]
