"""Forecasting stage: models, backtests, metrics, tracking, reports and the CLI."""
