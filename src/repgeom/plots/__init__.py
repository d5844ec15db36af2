"""Figures: matplotlib functions of xarray datasets only."""
