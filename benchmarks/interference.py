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
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "city-interference.yaml"
VARIANTS = {"off": ["network.interference=none"], "reuse1": [], "reuse3": ["cells.hex_grid.reuse=3"],
            "reuse1-outage": ["optimisation.outage=0.1"]}
# without fading an outage changes only what fimi-online plans on (its cells' interference quantile)
ONLY = {"reuse1-outage": "fimi-online"}


def run_variant(variant: str, policies: str, out: Path, extra: list[str]) -> Path:
    folder = out / variant
    command = [sys.executable, "-m", "simfl", "compare", str(SCENARIO), "--policies", ONLY.get(variant, policies),
               "--out", str(folder)]
    if (folder / "manifest.json").exists() or any(folder.glob("*/manifest.json")):
        command.append("--resume")
    for field in [*VARIANTS[variant], *extra]:
        command += ["--set", field]
    print(f"[{variant}] {' '.join(command[3:])}", file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    return folder


def rate_ratios(events: pd.DataFrame, noise_w_per_hz: np.ndarray) -> pd.Series:
    """Per upload that sent: its rate on noise alone over the rate it had."""
    sent = events[np.isfinite(events["sinr_db"]) & (events["rate_bps"] > 0)]
    noise = noise_w_per_hz[sent["cell"].to_numpy()]
    alone = sent["b_hz"] * np.log2(1.0 + sent["p_w"] * sent["gain"] / (sent["b_hz"] * noise))
    return (alone / sent["rate_bps"]).rename("ratio")


def rows(variant: str, folder: Path, noise_w_per_hz: np.ndarray) -> pd.DataFrame:
    rounds = pd.read_csv(folder / "rounds.csv")
    events = pd.read_csv(folder / "events.csv")
    summary = pd.read_csv(folder / "summary.csv")
    per = rounds.groupby("policy").agg(selected=("selected", "sum"), stragglers=("stragglers", "sum"),
                                       energy_j=("energy_j", "sum")).reset_index()
    quality = []
    for policy, jobs in events.groupby("policy"):
        ratio = rate_ratios(jobs, noise_w_per_hz)
        sinr = jobs["sinr_db"][np.isfinite(jobs["sinr_db"])]
        quality.append({"policy": policy, "ratio_median": ratio.median(), "ratio_p90": ratio.quantile(0.9),
                        "sinr_db_mean": sinr.mean()})
    table = per.merge(pd.DataFrame(quality), on="policy").merge(summary, on="policy", how="left")
    table.insert(0, "variant", variant)
    return table


def main() -> None:
    from simfl.scenario import load_scenario

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--policies", default="tfl,fimi,fimi-online")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "interference")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO)
    noise = np.array([10 ** (c.noise_dbm_per_hz / 10) / 1000 for c in scenario.cells])
    tables = [rows(v, run_variant(v, args.policies, args.out, args.extra), noise) for v in args.variants]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "interference.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
