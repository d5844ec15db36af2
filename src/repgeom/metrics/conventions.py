"""The published conventions of the geometry job's metrics (``metrics.geometry.conventions``),
and the scalar coordinates that record them in every dataset it writes. Light: the gather job
reads it."""

from __future__ import annotations

from dataclasses import dataclass

import xarray as xr

# each convention: its choices (the schema holds the default) and the coordinate recording it
CONVENTIONS = {
    "rankme": (("garrido", "tracing"), "rankme_convention"),
    "alpha_req": (("repgeom", "tracing"), "alpha_req_convention"),
    "twonn_microscope": (("repgeom", "llm_microscope"), "twonn_microscope_convention"),
    "pooling": (("all", "last_token"), "pooling"),
    "final_norm": (("after", "before"), "final_norm"),
}
_CONVENTION_NAMES = {
    "rankme_convention": "RankMe convention (garrido: σ, no ε; tracing: λ = σ², ε = 1e-7)",
    "alpha_req_convention": "α-ReQ convention (repgeom: least squares over alpha_req_first…"
    "last; tracing: ranks 11…99 weighted 1/i)",
    "twonn_microscope_convention": "LLM-Microscope TwoNN convention (repgeom: duplicates "
    "removed; llm_microscope: its intrinsic_dimension on every row)",
    "pooling": "tokens of each sequence used (all, or the last token)",
    "final_norm": "last layer before or after the model's final norm",
}


@dataclass(frozen=True)
class Conventions:
    """The config's ``metrics.geometry.conventions``: published conventions, one choice each."""

    rankme: str
    alpha_req: str
    twonn_microscope: str
    pooling: str
    final_norm: str

    def __post_init__(self) -> None:
        for key, (choices, _) in CONVENTIONS.items():
            if getattr(self, key) not in choices:
                raise ValueError(
                    f"metrics.geometry.conventions.{key} is {getattr(self, key)!r}; choose "
                    f"from {list(choices)}"
                )

    def record(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with the conventions as scalar coordinates, and the long_name of each variable
        computed under a convention other than the default saying which."""
        out = ds.assign_coords(self.coords())
        for key in CONVENTIONS:
            long_name = LONG_NAMES.get((key, getattr(self, key)))
            if long_name and key in out.data_vars:
                out[key].attrs["long_name"] = long_name
        return out

    def coords(self) -> dict[str, tuple]:
        """Each convention as a scalar coordinate: a dataset's identity carries them."""
        return {
            name: ((), getattr(self, key), {"long_name": _CONVENTION_NAMES[name], "units": "1"})
            for key, (_, name) in CONVENTIONS.items()
        }


# the long_name of a variable computed under a convention other than repgeom's default
LONG_NAMES = {
    ("rankme", "tracing"): "RankMe exp(H(p)), p = λ/Σλ + 1e-7 (Li et al. 2025)",
    ("alpha_req", "tracing"): "α-ReQ: exponent α of λ_i ∝ i^−α, ranks 11…99 weighted 1/i",
    ("twonn_microscope", "llm_microscope"): "TwoNN intrinsic dimension, LLM-Microscope's own "
    "(every row, duplicates counted)",
}


def convention_coords(ds: xr.Dataset) -> dict[str, str]:
    """The conventions a dataset of the geometry job records (empty for one written before
    they were recorded)."""
    return {n: str(ds.coords[n].values) for _, n in CONVENTIONS.values() if n in ds.coords}
