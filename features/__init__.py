"""Data layer: event sources, gazetteer, monthly panel, covariates, synthetic data.

This package never imports :mod:`forecast`.
"""
