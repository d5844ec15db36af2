"""The "Birth of a Transformer" study (Bietti et al. 2023): bigram-trigger data, models, probes."""

from repgeom.birth.config import DEFAULT_VARIANTS, BirthConfig, default_study, parse_config
from repgeom.birth.data import (
    Batch,
    BigramLanguage,
    docstring_documents,
    generate,
    make_language,
)
from repgeom.birth.models import (
    FreezeSchedule,
    FullTransformer,
    SimplifiedTransformer,
    build_model,
)
from repgeom.birth.probes import (
    induction_mass,
    previous_token_mass,
    probe_wk1,
    probe_wk2,
    probe_wo2,
)
from repgeom.birth.train import (
    METRICS,
    drop_iteration,
    output_pools,
    sample_batch,
    train_on_language,
    train_study,
    train_variant,
)

__all__ = [
    "DEFAULT_VARIANTS",
    "METRICS",
    "Batch",
    "BigramLanguage",
    "BirthConfig",
    "FreezeSchedule",
    "FullTransformer",
    "SimplifiedTransformer",
    "build_model",
    "default_study",
    "docstring_documents",
    "drop_iteration",
    "generate",
    "induction_mass",
    "make_language",
    "output_pools",
    "parse_config",
    "previous_token_mass",
    "probe_wk1",
    "probe_wk2",
    "probe_wo2",
    "sample_batch",
    "train_on_language",
    "train_study",
    "train_variant",
]
