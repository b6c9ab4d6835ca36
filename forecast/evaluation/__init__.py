"""Evaluation: rolling-origin backtests and the scores they are judged by.

Sits above the models (it fits and predicts any :class:`forecast.models.base.Forecaster`) and
below tracking, reports and jobs. Import the modules directly (``forecast.evaluation.backtest``).
"""
