"""What co-channel interference does to each policy: scenarios/city-interference.yaml (the
city's 7 cells and 10,000 phones, 3GPP TR 38.901 UMa path loss) without interference,
with it under reuse 1 (every cell on one carrier) and under reuse 3.

    python benchmarks/interference.py [--variants off reuse1 reuse3 reuse1-outage] [--policies tfl,fimi,fimi-online]
                                      [--out runs/interference] [--set F=V ...]

Variants (each a `simfl compare` of the policies into --out/<variant>, resumable):
- off: `network.interference: none`, every upload on noise alone (eq. (7));
- reuse1: the scenario as shipped: co-channel interference, one carrier for all cells;
- reuse3: the same with `cells.hex_grid.reuse: 3`: adjacent cells on different carriers;
- reuse1-outage: reuse 1 with `optimisation.outage: 0.1`, fimi-online only: it plans each
  device on the 90th percentile of the interference its cell's uploads met (the static
  plans do not change: the city has no fading for an outage quantile to act on).
Columns per (variant, policy), over the run's uploads that sent anything: the ratio of
each upload's rate on noise alone (eq. (7) at its own gain, band and power) to the rate it
had (median and 90th percentile: how much interference slowed it), its mean SINR in dB,
the devices selected and cut at the deadline (stragglers), the run's energy, and Table I
(energy, latency and uplink to each target accuracy, best accuracy). Written to
--out/interference.csv as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from compare_runs import compare_into, run_totals

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "city-interference.yaml"
VARIANTS = {"off": ["network.interference=none"], "reuse1": [], "reuse3": ["cells.hex_grid.reuse=3"],
            "reuse1-outage": ["optimisation.outage=0.1"]}
# without fading an outage changes only what fimi-online plans on (its cells' interference quantile)
ONLY = {"reuse1-outage": "fimi-online"}


def rate_ratios(events: pd.DataFrame, noise_w_per_hz: np.ndarray) -> pd.Series:
    """Per upload that sent: its rate on noise alone (eq. (7)) over the rate it had."""
    from simfl.radio import uplink_rate_bps

    sent = events[np.isfinite(events["sinr_db"]) & (events["rate_bps"] > 0)]
    alone = uplink_rate_bps(sent["b_hz"], sent["gain"], sent["p_w"], noise_w_per_hz[sent["cell"].to_numpy()])
    return pd.Series(alone / sent["rate_bps"].to_numpy(), name="ratio")


def rows(variant: str, folder: Path, noise_w_per_hz: np.ndarray) -> pd.DataFrame:
    events = pd.read_csv(folder / "events.csv")
    quality = []
    for policy, jobs in events.groupby("policy"):
        ratio = rate_ratios(jobs, noise_w_per_hz)
        sinr = jobs["sinr_db"][np.isfinite(jobs["sinr_db"])]
        quality.append({"policy": policy, "ratio_median": ratio.median(), "ratio_p90": ratio.quantile(0.9),
                        "sinr_db_mean": sinr.mean()})
    table = run_totals(folder).merge(pd.DataFrame(quality), on="policy")
    table.insert(0, "variant", variant)
    return table


def main() -> None:
    from simfl.scenario import load_scenario
    from simfl.units import dbm_to_w

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--policies", default="tfl,fimi,fimi-online")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "interference")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    noise = np.array([dbm_to_w(c.noise_dbm_per_hz) for c in scenario.cells], dtype=float)
    tables = [rows(v, compare_into(SCENARIO, args.out / v, ONLY.get(v, args.policies), [*VARIANTS[v], *args.extra], v),
                   noise) for v in args.variants]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "interference.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
