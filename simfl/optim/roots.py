"""One vectorised root finder for the monotone one-dimensional searches of Algorithms 1
and 2 and of the exact solver: many independent brackets are searched at once."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# Every third step is a plain bisection: regula falsi alone can creep along a flat or
# kinked function (ours are piecewise), bisection alone needs ~50 steps per search.
_BISECT_EVERY = 3


def bracketed_root(fun: Callable[[np.ndarray], Any], lo: np.ndarray, hi: np.ndarray, *,
                   xtol: float, ftol: np.ndarray | float = 0.0, max_iter: int = 200,
                   method: str = "illinois", f_lo: np.ndarray | None = None,
                   f_hi: np.ndarray | None = None,
                   fun_at: Callable[[np.ndarray, np.ndarray], Any] | None = None) -> np.ndarray:
    """Roots of a monotone function, elementwise, inside brackets [lo, hi].

    `fun` maps an array of points (shape of `lo`) to the function values there, each
    element its own independent problem; fun(lo) and fun(hi) must not have the same
    strict sign. Methods:

    - "bisection": halve every bracket each step (the searches as the paper writes them);
    - "illinois": regula-falsi steps with the Illinois correction and a bisection every
      third step, so the bracket still at least halves every three steps;
    - "secant": secant steps through the last two points (superlinear even where regula
      falsi keeps one end fixed), a bisection whenever the step leaves the bracket or the
      bracket has not halved within three steps;
    - "newton": `fun` returns (f, df/dx); Newton steps from the last point, a bisection
      whenever the step leaves the bracket or the last step did not halve |f|.

    `fun_at(x, idx)`, when given, is `fun` for the elements `idx` alone (x holds their
    points): each step then evaluates only the elements still searching, so a few slow
    elements do not cost an evaluation of all of them per step (a million devices). It
    must give, element for element, the values `fun` gives; the roots are then the same.

    Stops per element when the bracket is narrower than `xtol`, when two successive
    fast (Newton or regula-falsi) points are closer than `xtol` (they have converged
    even though the far end of the bracket has not moved), or when |f| <= `ftol`;
    returns, per element, the evaluated point with the smallest |f|.
    """
    newton = method == "newton"

    def evaluate(x: np.ndarray, searching: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        if fun_at is not None and searching is not None and not searching.all():
            # the finished elements get NaN, which every update below leaves unused
            idx = np.flatnonzero(searching)
            part = fun_at(x[idx], idx)
            out: Any = _spread(part, idx, x.shape, newton)
        else:
            out = fun(x)
        if newton:
            return np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)
        return np.asarray(out, dtype=float), None

    lo = np.array(lo, dtype=float, copy=True)
    hi = np.array(hi, dtype=float, copy=True)
    d_lo = d_hi = None
    if f_lo is None:
        f_lo, d_lo = evaluate(lo)
    if f_hi is None:
        f_hi, d_hi = evaluate(hi)
    flo = np.asarray(f_lo, dtype=float).copy()
    fhi = np.asarray(f_hi, dtype=float).copy()
    ftol = np.broadcast_to(np.asarray(ftol, dtype=float), lo.shape)
    best = np.where(np.abs(flo) <= np.abs(fhi), lo, hi)
    fbest = np.minimum(np.abs(flo), np.abs(fhi))
    done = (fbest <= ftol) | (hi - lo <= xtol)
    # which end moved last (+1 hi, -1 lo): two moves of the same end trigger Illinois
    last = np.zeros(lo.shape, dtype=np.int8)
    previous = np.full(lo.shape, np.nan)
    x_n, f_n, d_n = best.copy(), np.full(lo.shape, np.nan), np.full(lo.shape, np.nan)
    bisect_next = np.ones(lo.shape, dtype=bool)
    if newton and d_lo is not None and d_hi is not None:
        # Newton starts from the better end where its slope is known
        use_lo = np.abs(flo) <= np.abs(fhi)
        f_n, d_n = np.where(use_lo, flo, fhi), np.where(use_lo, d_lo, d_hi)
        bisect_next = np.zeros(lo.shape, dtype=bool)
    if method == "secant":
        x_m, f_m, x_n, f_n = lo.copy(), flo.copy(), hi.copy(), fhi.copy()
    widths = [hi - lo]  # widths[s] is the bracket width before step s
    for step in range(max_iter):
        if done.all():
            break
        mid = 0.5 * (lo + hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            if method == "bisection":
                x = mid
            elif newton:
                x = x_n - f_n / d_n
                x = np.where(bisect_next | ~np.isfinite(x) | (x <= lo) | (x >= hi), mid, x)
            elif method == "secant":
                x = x_n - f_n * (x_n - x_m) / (f_n - f_m)
                slow = (hi - lo) > 0.5 * widths[step - 3] if step >= 3 and step % 3 == 0 else np.zeros(lo.shape, bool)
                x = np.where(slow | ~np.isfinite(x) | (x <= lo) | (x >= hi), mid, x)
            elif step % _BISECT_EVERY == _BISECT_EVERY - 1:
                x = mid
            else:
                x = (lo * fhi - hi * flo) / (fhi - flo)
                x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, mid)
        # only fast (non-midpoint) steps count for the "two successive points" test: a
        # forced bisection in between must not hide that they have converged
        fast = x != mid
        active = ~done
        fx, dx = evaluate(x, active)
        if dx is not None:
            bisect_next = ~(np.abs(fx) <= 0.5 * np.abs(f_n))
            x_n, f_n, d_n = x, fx, dx
        elif method == "secant":
            # the secant runs through the last two points; every third step the bracket
            # must have halved since three steps before, or that step bisects
            x_m, f_m, x_n, f_n = x_n, f_n, x, fx
        same_as_lo = (np.sign(fx) == np.sign(flo)) & active
        same_as_hi = ~same_as_lo & active
        # Illinois: when one end stays put twice, halve its function value
        fhi = np.where(same_as_lo & (last == -1), 0.5 * fhi, fhi)
        flo = np.where(same_as_hi & (last == 1), 0.5 * flo, flo)
        lo = np.where(same_as_lo, x, lo)
        flo = np.where(same_as_lo, fx, flo)
        hi = np.where(same_as_hi, x, hi)
        fhi = np.where(same_as_hi, fx, fhi)
        last = np.where(same_as_lo, -1, np.where(same_as_hi, 1, last)).astype(np.int8)
        better = active & (np.abs(fx) < fbest)
        best = np.where(better, x, best)
        fbest = np.where(better, np.abs(fx), fbest)
        done = done | (fbest <= ftol) | (hi - lo <= xtol) | (fast & (np.abs(x - previous) <= xtol))
        previous = np.where(fast, x, previous)
        widths.append(hi - lo)
    return best


def _spread(part: Any, idx: np.ndarray, shape: tuple[int, ...], newton: bool) -> Any:
    """The values of the elements `idx`, in arrays of the whole shape (NaN elsewhere)."""

    def whole(values: Any) -> np.ndarray:
        out = np.full(shape, np.nan)
        out[idx] = values
        return out

    return (whole(part[0]), whole(part[1])) if newton else whole(part)
