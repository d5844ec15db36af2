"""Softmax-bottleneck study (Godey et al. 2024): LM-head spectra, low-rank heads, 5-gram ranks.

Reference implementation of "Why do small language models underperform? Studying language model
saturation via the softmax bottleneck" (Godey, de la Clergerie, Sagot, 2024). No public code exists
for the paper; every definition used here is stated in the docstring of the function computing it.

- :mod:`repgeom.bottleneck.spectrum`: singular values of the output embedding and singular entropy.
- :mod:`repgeom.bottleneck.heads`: rank-restricted LM heads trained on frozen final representations.
- :mod:`repgeom.bottleneck.ngram`: 5-gram next-token matrices and their W-error (rank estimates).
"""
