"""Elementwise functions whose bits do not depend on who made the CPU.

torch computes sqrt, exp, log, sin, cos, tanh (and a few more) of float tensors with MKL's
vector math library (VML) in its high-accuracy mode: within an ulp of the true value, not
correctly rounded, and the last bit is the library's choice per processor. On an AMD EPYC,
torch.sqrt of float32 differs from the correctly rounded square root in 14% of inputs, and
the golden runs that take a square root (FedAdam's server step, the diffusion model's noise
schedule and Adam, which trains the generators) gave other bits there than on the Intel
Xeon that wrote them, though MKL's own matrix products agree (MKL_CBWR=COMPATIBLE).

In portable numerics (simfl.numerics) simfl's own code takes these functions from here:
square roots correctly rounded (IEEE 754 requires it of numpy's sqrt), exp, sin and cos of
the float64 value by glibc (the same code on every x86-64 CPU with AVX2 and FMA) rounded
to the tensor's type, tanh as 2 sigmoid(2x) - 1 (torch's own vectorised exp, no VML, and
differentiable), and Adam's step with that square root. In fast mode they are torch's own,
so fast results stay as they were. None of them is differentiable in portable mode except
`tanh`: they are for schedules, embeddings and optimiser state, not for a model's graph.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch

from simfl import numerics


def _portable() -> bool:
    return numerics.mode() == "portable"


def _through_numpy(function: Callable[[np.ndarray], np.ndarray], t: torch.Tensor, wide: bool) -> torch.Tensor:
    if t.requires_grad:
        raise ValueError("simfl.learning.portable_math: this function is computed outside torch's graph in portable "
                         "numerics; apply it to tensors that need no gradient (schedules, embeddings, optimiser state)")
    values = t.detach().cpu().numpy()
    result = function(values.astype(np.float64) if wide else values)
    return torch.from_numpy(np.ascontiguousarray(result.astype(values.dtype, copy=False))).to(t.device)


def sqrt(t: torch.Tensor) -> torch.Tensor:
    """The square root, correctly rounded in portable numerics (torch.sqrt in fast mode)."""
    return _through_numpy(np.sqrt, t, wide=False) if _portable() else t.sqrt()


def exp(t: torch.Tensor) -> torch.Tensor:
    """e^t (glibc's, of the float64 value, in portable numerics; torch.exp in fast mode)."""
    return _through_numpy(np.exp, t, wide=True) if _portable() else torch.exp(t)


def sin(t: torch.Tensor) -> torch.Tensor:
    """sin t (glibc's, of the float64 value, in portable numerics; torch.sin in fast mode)."""
    return _through_numpy(np.sin, t, wide=True) if _portable() else torch.sin(t)


def cos(t: torch.Tensor) -> torch.Tensor:
    """cos t (glibc's, of the float64 value, in portable numerics; torch.cos in fast mode)."""
    return _through_numpy(np.cos, t, wide=True) if _portable() else torch.cos(t)


def tanh(t: torch.Tensor) -> torch.Tensor:
    """tanh t, differentiable: 2 sigmoid(2t) - 1 in portable numerics, torch.tanh in fast mode."""
    return 2.0 * torch.sigmoid(2.0 * t) - 1.0 if _portable() else torch.tanh(t)


class Tanh(torch.nn.Module):
    """nn.Tanh through `tanh` (no parameters: a model's state_dict is the same with either)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tanh(x)


class PortableAdam(torch.optim.Adam):
    """torch.optim.Adam (no weight decay, no AMSGrad) whose step divides by a correctly
    rounded sqrt of the second moment, the rest in torch's own elementwise kernels. Its
    state_dict is Adam's, so a checkpoint of either resumes in the other."""

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                step = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(p.grad, 1.0 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                bias_correction1 = 1.0 - beta1**step
                bias_correction2_sqrt = float(np.sqrt(1.0 - beta2**step))
                denom = (sqrt(v) / bias_correction2_sqrt).add_(group["eps"])
                p.addcdiv_(m, denom, value=-group["lr"] / bias_correction1)
        return loss


def adam(params: Iterable[Any], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam for simfl's generators: torch's in fast mode, `PortableAdam` in portable numerics."""
    return (PortableAdam if _portable() else torch.optim.Adam)(params, lr=lr, betas=betas)


__all__ = ["PortableAdam", "Tanh", "adam", "cos", "exp", "sin", "sqrt", "tanh"]
