"""The "Birth of a Transformer" study (Bietti et al. 2023): bigram-trigger data (``data``),
models (``models``), memory probes (``probes``), training (``train``), a variant's settings
(``config``, torch-free), the variants of a config filled from the schema and checked when the
workflow plans (``plan``) and figures (``plots``)."""
