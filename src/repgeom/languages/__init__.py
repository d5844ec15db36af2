"""Per-language study: corpora, divergences and per-language datasets."""
