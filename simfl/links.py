"""Every device's link to every base station, not only to the one serving it: the mean
gain, and attachment to the strongest of them.

A cell's path loss is the paper's log-distance model (each cell's own intercept and
slope, and the device's one shadowing draw z times the cell's sigma, the same z on every
link: `link_gains`), or a TR 38.901 model (simfl.pathloss), whose links each have their
own LOS state and shadowing, renewed as the device walks. `Links` holds what the gains
depend on besides where each device is and how far it has walked, and is the one
function of both that the world, the network, the engine's channel and handover use.

Arrays are (I, n_cells): 10,000 devices and 19 cells make 1.5 MB of float64 per array
(3 MB more, briefly, for the coordinate differences), so the whole matrix is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simfl.geometry import MIN_DISTANCE_M, site_distances_m
from simfl.pathloss.link_state import LinkState, gain_db, link_state, los_draw, los_radius_m
from simfl.radio import mean_gain, mean_gain_db

# A cell other than the nearest serves a device only if its mean gain is stronger by more
# than float rounding. Cells with the same path-loss parameters are then served by the
# nearest, bit for bit as the nearest-base-station rule did: mathematically the nearest is
# never the weaker, but log10 and pow are not guaranteed monotone to the last bit, so a
# strict comparison could let a farther cell win by one ulp. 1e-9 relative is 4e-9 dB,
# a million times below any physical difference and ~1e4 times above the rounding (~1e-13).
TIE_RELATIVE = 1e-9


def _columns(path_loss_params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intercept, slope and shadowing sigma of each cell, as (1, n_cells) rows."""
    params = np.asarray(path_loss_params, float)
    return params[None, :, 0], params[None, :, 1], params[None, :, 2]


def link_distances_m(position_m: np.ndarray, bs_position_m: np.ndarray) -> np.ndarray:
    """(I, n_cells) distance of each device to each base station, floored at 1 m as the
    serving distance is (simfl.geometry.MIN_DISTANCE_M)."""
    return np.maximum(site_distances_m(np.asarray(position_m, float), np.asarray(bs_position_m, float)), MIN_DISTANCE_M)


def link_gains(position_m: np.ndarray, bs_position_m: np.ndarray, path_loss_params: np.ndarray,
               shadowing_z: np.ndarray) -> np.ndarray:
    """(I, n_cells) mean linear gain of every device to every base station: each cell's
    path loss PL = intercept + slope log10(d_km), and the device's shadowing draw z (the
    same on every link) times the cell's sigma (simfl.radio.mean_gain, elementwise, so
    the serving link's entry is the serving gain bit for bit)."""
    intercept, slope, std = _columns(path_loss_params)
    z = np.asarray(shadowing_z, float)[:, None]
    return mean_gain(link_distances_m(position_m, bs_position_m), intercept, slope, z, std)


def link_gains_db(position_m: np.ndarray, bs_position_m: np.ndarray, path_loss_params: np.ndarray,
                  shadowing_z: np.ndarray) -> np.ndarray:
    """(I, n_cells) the same mean gains in dB, -PL + z sigma: what handover compares."""
    intercept, slope, std = _columns(path_loss_params)
    z = np.asarray(shadowing_z, float)[:, None]
    return mean_gain_db(link_distances_m(position_m, bs_position_m), intercept, slope, z, std)


def strongest_site(gain: np.ndarray, distance_m: np.ndarray) -> np.ndarray:
    """(I,) index of each device's strongest link (mean gain, no fast fading) in the
    (I, n_cells) `gain`; the nearest (smallest `distance_m`, the first on a tie) unless
    another is stronger by more than TIE_RELATIVE."""
    rows = np.arange(len(gain))
    nearest = np.argmin(distance_m, axis=1)
    strongest = np.argmax(gain, axis=1)
    wins = gain[rows, strongest] > gain[rows, nearest] * (1.0 + TIE_RELATIVE)
    return np.where(wins, strongest, nearest)


@dataclass(frozen=True)
class Links:
    """What the mean gain of each device to each base station depends on besides the
    device's position and walked distance: the stations, each cell's path-loss model
    (`models[k]` a simfl.pathloss model, or None for the log-distance model of row k of
    `path_loss_params`; no models: every cell log-distance), the devices' shadowing draws
    of the log-distance model, the carriers and the seed of the per-link draws.

    Methods take positions (n, 2), the device at each (default: device j at row j) and
    the distance it has walked (default 0: where it was placed)."""

    bs_position_m: np.ndarray  # (n_cells, 2)
    path_loss_params: np.ndarray  # (n_cells, 3) intercept, slope, sigma (NaN in a TR 38.901 cell's row)
    shadowing_z: np.ndarray  # (I,) each device's one N(0, 1) draw, for the log-distance cells
    models: tuple[Any, ...] = ()
    carrier_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_cells,)
    seed: int = 0

    @property
    def log_distance_only(self) -> bool:
        """Every cell has the paper's model: the gains are `link_gains`, bit for bit as before
        TR 38.901 models existed."""
        return all(model is None for model in self.models)

    def _who(self, position_m: np.ndarray, device: Any, walked_m: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.asarray(position_m, float).reshape(-1, 2)
        n = len(position)
        who = np.arange(n) if device is None else np.broadcast_to(np.asarray(device, dtype=np.int64), (n,))
        walked = np.zeros(n) if walked_m is None else np.broadcast_to(np.asarray(walked_m, float), (n,))
        return position, who, walked

    def _groups(self, cells: list[int]) -> list[tuple[Any, float, list[int]]]:
        """The positions j in `cells` of the cells with one TR 38.901 model and carrier,
        per (model, carrier): their columns are computed together (None: log-distance)."""
        groups: dict[tuple[Any, float], list[int]] = {}
        for j, k in enumerate(cells):
            model = self.models[k] if self.models else None
            groups.setdefault((model, float(self.carrier_hz[k]) if model is not None else 0.0), []).append(j)
        return [(model, carrier, js) for (model, carrier), js in groups.items()]

    def state(self, position_m: np.ndarray, device: Any = None, walked_m: Any = None) -> LinkState:
        """(n, n_cells) LOS state and shadowing draw of every link (TR 38.901 cells); a
        log-distance cell's column holds the device's one draw z and `los` False."""
        position, who, walked = self._who(position_m, device, walked_m)
        distance = link_distances_m(position, self.bs_position_m)
        los = np.zeros(distance.shape, dtype=bool)
        z = np.repeat(np.asarray(self.shadowing_z, float)[who][:, None], distance.shape[1], axis=1)
        for model, _, ks in self._groups(list(range(distance.shape[1]))):
            if model is not None:
                block = link_state(model, self.seed, who[:, None], np.array(ks)[None, :], distance[:, ks],
                                   walked[:, None])
                los[:, ks], z[:, ks] = block.los, block.z
        return LinkState(los=los, z=z)

    def gains_db_in(self, state: LinkState, position_m: np.ndarray, cells: list[int] | None = None) -> np.ndarray:
        """(n, n_cells) mean gains in dB with every link in the given `state` (as `state`
        returns it): continuous along a path while the state holds, except at the models'
        jump distances. Only the columns of `cells`, in that order, if given."""
        position = np.asarray(position_m, float).reshape(-1, 2)
        cells = list(range(len(self.bs_position_m))) if cells is None else list(cells)
        distance = link_distances_m(position, self.bs_position_m[cells])
        params = np.asarray(self.path_loss_params, float)
        gain = np.empty(distance.shape)
        for model, carrier, js in self._groups(cells):
            ks = [cells[j] for j in js]
            if model is None:
                gain[:, js] = mean_gain_db(distance[:, js], params[ks, 0], params[ks, 1], state.z[:, ks], params[ks, 2])
            else:
                gain[:, js] = gain_db(model, carrier, distance[:, js], LinkState(state.los[:, ks], state.z[:, ks]))
        return gain

    def gains_db(self, position_m: np.ndarray, device: Any = None, walked_m: Any = None) -> np.ndarray:
        """(n, n_cells) mean gain in dB of every link: -PL + sigma z (what handover compares)."""
        position, who, walked = self._who(position_m, device, walked_m)
        if self.log_distance_only:
            return link_gains_db(position, self.bs_position_m, self.path_loss_params, np.asarray(self.shadowing_z)[who])
        return self.gains_db_in(self.state(position, who, walked), position)

    def gains(self, position_m: np.ndarray, device: Any = None, walked_m: Any = None) -> np.ndarray:
        """(n, n_cells) mean linear gain of every link (what attachment compares)."""
        position, who, walked = self._who(position_m, device, walked_m)
        if self.log_distance_only:
            return link_gains(position, self.bs_position_m, self.path_loss_params, np.asarray(self.shadowing_z)[who])
        return 10.0 ** (self.gains_db(position, who, walked) / 10.0)

    def gain_to(self, cell_of: np.ndarray, position_m: np.ndarray, device: Any = None,
                walked_m: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Distance (floored at 1 m) and mean linear gain from each point to the one cell
        `cell_of` there (n,): a serving link's, without the other cells' columns."""
        position, who, walked = self._who(position_m, device, walked_m)
        cell_of = np.broadcast_to(np.asarray(cell_of, dtype=np.int64), (len(position),))
        distance = np.maximum(np.linalg.norm(position - self.bs_position_m[cell_of], axis=1), MIN_DISTANCE_M)
        z = np.asarray(self.shadowing_z, float)[who]
        if self.log_distance_only:
            intercept, slope, std = np.asarray(self.path_loss_params, float)[cell_of].T
            return distance, mean_gain(distance, intercept, slope, z, std)
        gain_db_ = np.empty(len(position))
        params = np.asarray(self.path_loss_params, float)
        for k in np.unique(cell_of).tolist():
            rows = cell_of == k
            model = self.models[k]
            if model is None:
                gain_db_[rows] = mean_gain_db(distance[rows], params[k, 0], params[k, 1], z[rows], params[k, 2])
            else:
                state = link_state(model, self.seed, who[rows], k, distance[rows], walked[rows])
                gain_db_[rows] = gain_db(model, float(self.carrier_hz[k]), distance[rows], state)
        return distance, 10.0 ** (gain_db_ / 10.0)

    def of(self, device: int) -> DeviceLinks:
        """One device's links, for the handover search along its walk."""
        return DeviceLinks(self, int(device))


@dataclass(frozen=True)
class DeviceLinks:
    """One device's links to every base station (`Links.of`)."""

    links: Links
    device: int

    @property
    def shadowing_z(self) -> float:
        return float(self.links.shadowing_z[self.device])

    def gains_db(self, position_m: np.ndarray, walked_m: Any = None) -> np.ndarray:
        """(n, n_cells) the device's mean gains in dB at the points `position_m`, having walked `walked_m` there."""
        return self.links.gains_db(position_m, self.device, walked_m)

    def state(self, position_m: np.ndarray, walked_m: Any = None) -> LinkState:
        return self.links.state(position_m, self.device, walked_m)

    def breaks_along(self, origin_m: np.ndarray, unit: np.ndarray, length_m: float, walked_m: float,
                     from_m: float = 0.0, to_m: float | None = None) -> np.ndarray:
        """Distances l in (0, length_m) along the leg origin + l unit, which the device
        starts having walked `walked_m`, between which each link's gain is continuous and
        monotone: where a TR 38.901 link's draws are renewed (its walked distance crosses
        a multiple of a correlation distance), where its distance crosses the LOS radius
        of its draw or a jump distance of its model, and each closest approach to a
        station (a superset: extra points only split pieces). Renewals and LOS radii only
        for the stretch [from_m, to_m] of the leg (default: all of it)."""
        links = self.links
        w = np.asarray(origin_m, float)[None, :] - links.bs_position_m
        b_lin, c_const = 2.0 * (w @ unit), np.einsum("ij,ij->i", w, w)  # |p(l) - bs|^2 = l^2 + b l + c
        found = [-b_lin / 2.0]
        on_leg = np.clip(-b_lin / 2.0, 0.0, length_m)
        closest = np.sqrt(np.maximum(on_leg**2 + b_lin * on_leg + c_const, 0.0))
        farthest = np.sqrt(np.maximum(np.maximum(c_const, length_m**2 + b_lin * length_m + c_const), 0.0))
        begin_m, end_m = walked_m + max(from_m, 0.0), walked_m + (length_m if to_m is None else min(to_m, length_m))

        def crossings(k: int, radius_m: np.ndarray) -> np.ndarray:  # where |p(l) - bs_k| = radius
            half = b_lin[k] ** 2 / 4.0 - c_const[k] + np.asarray(radius_m, float) ** 2
            root = np.sqrt(np.maximum(half, 0.0))
            return np.concatenate([(-b_lin[k] / 2.0 - root)[half >= 0], (-b_lin[k] / 2.0 + root)[half >= 0]])

        for model in {m for m in links.models if m is not None}:  # the cells of one model at once
            cells = np.array([k for k, m in enumerate(links.models) if m == model])
            for correlation in (model.LOS_CORRELATION_M, *model.SF_CORRELATION_M):
                first, last = np.ceil(begin_m / correlation), np.floor(end_m / correlation)
                found.append(np.arange(first, last + 1.0) * correlation - walked_m)
            for k in cells.tolist():
                found.append(crossings(k, np.array(model.jump_distances_m(float(links.carrier_hz[k])))))
            step = model.LOS_CORRELATION_M
            periods = np.arange(np.floor(begin_m / step), np.floor(end_m / step) + 1.0)[None, :]
            u = los_draw(model, links.seed, self.device, cells[:, None], (periods + 0.5) * step)  # (cells, periods)
            # a link in LOS (NLOS) all along the leg crosses no LOS radius: only the others are inverted
            flips = (u < model.los_probability(closest[cells, None])) & (u >= model.los_probability(
                farthest[cells, None]))
            radius = np.zeros(u.shape)
            for i, j in zip(*np.nonzero(flips)):
                radius[i, j] = los_radius_m(model, links.seed, self.device, int(cells[i]), int(periods[0, j]))
            half = np.where(flips, b_lin[cells, None] ** 2 / 4.0 - c_const[cells, None] + radius**2, -1.0)
            root = np.sqrt(np.maximum(half, 0.0))
            cross = np.stack([-b_lin[cells, None] / 2.0 - root, -b_lin[cells, None] / 2.0 + root])
            start = periods * step - walked_m  # each period's own draw holds only on its stretch of the leg
            found.append(cross[(half >= 0.0) & (cross >= start) & (cross <= start + step)])
        breaks = np.concatenate(found)
        return np.unique(breaks[(breaks > 0.0) & (breaks < length_m)])


__all__ = ["TIE_RELATIVE", "DeviceLinks", "Links", "link_distances_m", "link_gains", "link_gains_db", "strongest_site"]
