"""Per-language study: corpora, sentence pooling, divergences and per-language datasets."""
