"""Data: corpora, tokenizers and token windows."""
