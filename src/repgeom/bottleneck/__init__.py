"""Softmax-bottleneck study (Godey et al. 2024): LM-head spectra, low-rank heads, 5-gram ranks.

Reference implementation of "Why do small language models underperform? Studying language model
saturation via the softmax bottleneck" (Godey, de la Clergerie, Sagot, 2024). No public code exists
for the paper; every definition used here is stated in the docstring of the function computing it.

- :mod:`repgeom.bottleneck.spectrum`: singular values of the output embedding and singular entropy.
- :mod:`repgeom.bottleneck.heads`: rank-restricted LM heads trained on frozen final representations.
- :mod:`repgeom.bottleneck.ngram_werror`: 5-gram rank estimates (W-error datasets), from
  :mod:`~repgeom.bottleneck.ngram_counts` (the next-token matrix) and
  :mod:`~repgeom.bottleneck.ngram_svd` (its singular values and W-error curve).
- :mod:`repgeom.bottleneck.memory`: peak-memory estimates of the heads and the 5-gram estimate.
"""
