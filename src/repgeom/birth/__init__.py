"""The "Birth of a Transformer" study (Bietti et al. 2023): bigram-trigger data (``data``),
models (``models``), memory probes (``probes``), training (``train``), the variants' settings
(``config``, torch-free: the workflow reads it when it plans) and figures (``plots``)."""
