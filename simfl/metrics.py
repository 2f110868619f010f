"""Table I from rounds.csv: energy, latency and uplink traffic spent until the test
accuracy first reaches each target, and the best accuracy. A function of the file alone,
so a table can be recomputed without re-running anything."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

BITS_PER_GB = 8e9
QUANTITIES = ("energy_j", "latency_h", "uplink_gb")
# how each quantity is headed and printed in Table I
HEADINGS = {"energy_j": ("Energy", "J", "{:.2f}"), "latency_h": ("Latency", "h", "{:.3f}"),
            "uplink_gb": ("Uplink", "GB", "{:.3f}")}


def first_reach(rounds: pd.DataFrame, target: float) -> pd.Series | None:
    """The row of the first round whose accuracy is >= target, or None."""
    ordered = rounds.sort_values("round")
    hit = ordered[ordered["accuracy"] >= target]
    return None if hit.empty else hit.iloc[0]


def summary_table(rounds: pd.DataFrame, targets: Sequence[float], policies: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per policy: for each target x, `energy_j@x`, `latency_h@x`, `uplink_gb@x`
    (cumulative up to and including the first round reaching x; NaN when never reached)
    and the same as ratios to the first policy (`...@x_ratio`); then `best_accuracy` and
    `rounds`. Policies keep the order given (default: order of first appearance)."""
    order = list(policies) if policies is not None else list(dict.fromkeys(rounds["policy"]))
    rows = []
    for name in order:
        mine = rounds[rounds["policy"] == name]
        row: dict[str, object] = {"policy": name}
        for x in targets:
            hit = first_reach(mine, x) if not mine.empty else None
            tag = target_tag(x)
            row[f"energy_j@{tag}"] = np.nan if hit is None else float(hit["cum_energy_j"])
            row[f"latency_h@{tag}"] = np.nan if hit is None else float(hit["end_s"]) / 3600.0
            row[f"uplink_gb@{tag}"] = np.nan if hit is None else float(hit["cum_uplink_bits"]) / BITS_PER_GB
        row["best_accuracy"] = float(mine["accuracy"].max()) if not mine.empty else np.nan
        row["rounds"] = int(len(mine))
        rows.append(row)
    table = pd.DataFrame(rows)
    for x in targets:
        tag = target_tag(x)
        for quantity in QUANTITIES:
            column = f"{quantity}@{tag}"
            reference = table[column].iloc[0] if len(table) else np.nan
            table[f"{column}_ratio"] = table[column] / reference if reference and np.isfinite(reference) else np.nan
    return table


def table_header(targets: Sequence[float]) -> list[str]:
    """Table I's column headings: policy, then Energy/Latency/Uplink at each target, best accuracy."""
    header = ["policy"]
    for x in targets:
        header += [f"{HEADINGS[q][0]}@{target_tag(x)} ({HEADINGS[q][1]})" for q in QUANTITIES]
    return header + ["Best acc. (%)"]


def render(cells: list[list[str]]) -> str:
    """Rows of cells as aligned text, a rule under the first (the header)."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table(table: pd.DataFrame, targets: Sequence[float]) -> str:
    """Table I as text: `value (ratio x)` cells, N/A where a target was never reached."""
    cells = [table_header(targets)]
    for _, row in table.iterrows():
        line = [str(row["policy"])]
        for x in targets:
            tag = target_tag(x)
            for quantity in QUANTITIES:
                value, ratio = row[f"{quantity}@{tag}"], row[f"{quantity}@{tag}_ratio"]
                if not np.isfinite(value):
                    line.append("N/A")
                else:
                    line.append(HEADINGS[quantity][2].format(value) + (f" ({ratio:.2f}x)" if np.isfinite(ratio) else ""))
        line.append(f"{100 * row['best_accuracy']:.2f}")
        cells.append(line)
    return render(cells)


def target_tag(target: float) -> str:
    """0.7 -> '70', 0.785 -> '78.5': the paper's 'Energy@70' naming."""
    return f"{100 * target:g}"
