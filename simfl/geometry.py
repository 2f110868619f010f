"""Plane geometry of the world: where a hexagonal grid puts its base stations, and which
base station serves a device (the nearest). Positions are (x, y) in metres."""

from __future__ import annotations

import math

import numpy as np

# A device on top of its base station would have an infinite gain (path loss is
# logarithmic in the distance): distances are floored at 1 m.
MIN_DISTANCE_M = 1.0


def hex_grid_size(rings: int) -> int:
    """Sites of a hexagonal grid with `rings` rings around its centre: 1 + 3R(R + 1)."""
    return 1 + 3 * rings * (rings + 1)


def hex_grid_positions(rings: int, spacing_m: float) -> list[tuple[float, float]]:
    """Base-station positions of a hexagonal grid: (0, 0), then each ring r = 1..rings
    (6r sites at hexagonal distance r, neighbours `spacing_m` apart) counter-clockwise
    from the east."""
    return [position for _, position in hex_grid_sites(rings, spacing_m)]


def hex_grid_sites(rings: int, spacing_m: float) -> list[tuple[tuple[int, int], tuple[float, float]]]:
    """The sites of `hex_grid_positions` with their axial coordinates (q, r): the site
    is at spacing_m x (q + r/2, r sqrt(3)/2)."""
    sites = []
    for q in range(-rings, rings + 1):
        for r in range(-rings, rings + 1):
            ring = max(abs(q), abs(r), abs(q + r))
            if ring <= rings:
                x, y = spacing_m * (q + r / 2.0), spacing_m * (r * math.sqrt(3.0) / 2.0)
                sites.append((ring, math.atan2(y, x) % (2.0 * math.pi), (q, r), (x, y)))
    return [(axial, position) for _, _, axial, position in sorted(sites)]


def site_distances_m(position_m: np.ndarray, sites_m: np.ndarray) -> np.ndarray:
    """(n, k) Euclidean distance from each of n points to each of k sites, not floored."""
    return np.linalg.norm(position_m[:, None, :] - sites_m[None, :, :], axis=2)


def nearest_site(position_m: np.ndarray, sites_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For points (n, 2) and sites (k, 2): the index of each point's nearest site (the
    first on a tie) and the distance to it, floored at MIN_DISTANCE_M."""
    all_distances = site_distances_m(position_m, sites_m)
    nearest = np.argmin(all_distances, axis=1)
    return nearest, np.maximum(all_distances[np.arange(len(position_m)), nearest], MIN_DISTANCE_M)


__all__ = ["MIN_DISTANCE_M", "hex_grid_positions", "hex_grid_sites", "hex_grid_size", "nearest_site", "site_distances_m"]
