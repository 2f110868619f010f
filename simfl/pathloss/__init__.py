"""Path-loss models beside the paper's log-distance one (PL = intercept + slope log10 d_km,
simfl.radio): TR 38.901's UMa, UMi-Street Canyon and RMa (Section 7.4), each a registered
class a cell names in its scenario, `path_loss: {model: uma, h_ut_m: 1.5}`.

- `tr38901`: the table's equations, pure functions of distance, heights and carrier;
- `models`: the registered model classes, their fields and validity ranges;
- `link_state`: each link's LOS state and shadowing, drawn per link from keyed streams and
  redrawn as its device walks, and the link's gain in dB.
"""

from simfl.pathloss.models import MIN_DISTANCE_M, MODELS, FieldRange, RMa, Tr38901Model, UMa, UMi, register

__all__ = ["MIN_DISTANCE_M", "MODELS", "FieldRange", "RMa", "Tr38901Model", "UMa", "UMi", "register"]
