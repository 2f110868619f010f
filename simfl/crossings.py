"""Where some other cell's mean gain crosses the serving cell's plus the hysteresis, for
gains that are piecewise monotone along a walk but have no closed form to root: TR 38.901
links (simfl.pathloss), whose gains step where their LOS state or shadowing is renewed.

Between two consecutive `points` (instants at which any link may step or turn: its draws
renewed, its LOS radius or a jump distance crossed, its closest approach; the caller's
superset) every link keeps its state and its gain is continuous and monotone in time, as
path loss rises with the distance and the distance is monotone on either side of the
closest approach. On such a piece the margin f = G_k - G_s - h of another cell k is then
bounded by the ends' gains: below by min G_k - max G_s - h, above by max G_k - min G_s - h,
and it is monotone where G_k and G_s move in opposite directions. Each (piece, cell) is
halved until the bound excludes 0 (no crossing), or f is monotone (one crossing where the
ends differ in sign, found by brentq to full precision), or it is `MIN_WIDTH_S` short,
where a sign change is a crossing and an excursion across the threshold and back within it
is missed (one shorter than a microsecond: no handover rule could act on it). A margin that
follows the threshold closely for long (a near tangency) could need many halvings; past
`MAX_CANDIDATES` pieces in a round the search keeps to sign changes at the pieces' ends.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.optimize import brentq

from simfl.pathloss.link_state import LinkState

MIN_WIDTH_S = 1e-6
MAX_CANDIDATES = 20_000
MAX_HALVINGS = 80

StateAt = Callable[[np.ndarray], LinkState]  # instants (m,) -> every link's state there, (m, n_cells)
# (state (m, n_cells), instants (m,), cells or None for all) -> gains dB (m, len(cells))
GainsIn = Callable[[LinkState, np.ndarray, "list[int] | None"], np.ndarray]


def margin_crossings(points: np.ndarray, serving: int, state_at: StateAt, gains_in: GainsIn, hysteresis_db: float,
                     xtol: float) -> list[float]:
    """Instants strictly between the first and last of the sorted `points` at which some
    other cell's gain minus the serving cell's crosses `hysteresis_db`, each link's
    gain continuous and monotone between consecutive points (see the module's note)."""
    if len(points) < 2:
        return []
    a, b = points[:-1], points[1:]
    state = state_at((a + b) / 2.0)  # each piece's state: the one at its middle holds throughout it
    n_cells = state.z.shape[1]
    left, right = gains_in(state, a, None), gains_in(state, b, None)
    others = np.array([k for k in range(n_cells) if k != serving], dtype=np.int64)
    piece = np.repeat(np.arange(len(a)), len(others))
    cell = np.tile(others, len(a))
    lo, hi = a[piece], b[piece]
    k_lo, k_hi = left[piece, cell], right[piece, cell]
    s_lo, s_hi = left[piece, serving], right[piece, serving]
    roots: list[float] = []

    def root(p: int, k: int, t0: float, t1: float) -> float:
        fixed = LinkState(state.los[[p]], state.z[[p]])

        def f(t: float) -> float:
            g_k, g_s = gains_in(fixed, np.array([t]), [k, serving])[0]
            return float(g_k - g_s - hysteresis_db)

        f0, f1 = f(t0), f(t1)  # the scalar call may round an end's tiny margin to the other sign
        return brentq(f, t0, t1, xtol=xtol, maxiter=200) if f0 * f1 < 0.0 else (t0 if f0 == 0.0 else t1)

    for _ in range(MAX_HALVINGS):
        if len(piece) == 0:
            break
        f_lo, f_hi = k_lo - s_lo - hysteresis_db, k_hi - s_hi - hysteresis_db
        low = np.minimum(k_lo, k_hi) - np.maximum(s_lo, s_hi) - hysteresis_db
        high = np.maximum(k_lo, k_hi) - np.minimum(s_lo, s_hi) - hysteresis_db
        open_ = (low <= 0.0) & (high >= 0.0)  # the bound leaves room for a crossing
        monotone = (k_hi - k_lo) * (s_hi - s_lo) <= 0.0
        sign_change = f_lo * f_hi < 0.0
        short = hi - lo <= MIN_WIDTH_S
        settle = open_ & sign_change & (monotone | short)
        for i in np.flatnonzero(settle):
            roots.append(root(int(piece[i]), int(cell[i]), float(lo[i]), float(hi[i])))
        halve = open_ & ~monotone & ~short
        if halve.sum() > MAX_CANDIDATES:
            for i in np.flatnonzero(halve & sign_change):
                roots.append(root(int(piece[i]), int(cell[i]), float(lo[i]), float(hi[i])))
            break
        idx = np.flatnonzero(halve)
        piece, cell, lo, hi = piece[idx], cell[idx], lo[idx], hi[idx]
        k_lo, k_hi, s_lo, s_hi = k_lo[idx], k_hi[idx], s_lo[idx], s_hi[idx]
        mid = (lo + hi) / 2.0
        g_mid = gains_in(LinkState(state.los[piece], state.z[piece]), mid, None)
        k_mid, s_mid = g_mid[np.arange(len(idx)), cell], g_mid[:, serving]
        piece, cell = np.concatenate([piece, piece]), np.concatenate([cell, cell])
        lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
        k_lo, k_hi = np.concatenate([k_lo, k_mid]), np.concatenate([k_mid, k_hi])
        s_lo, s_hi = np.concatenate([s_lo, s_mid]), np.concatenate([s_mid, s_hi])
    return roots


__all__ = ["MAX_CANDIDATES", "MIN_WIDTH_S", "margin_crossings"]
