"""The jobs: what a user asks the system to do, as plain Python functions.

Each module holds the jobs of one command group (``data``, ``forecasting``, ``experiments``,
``scenarios``, ``ledger``, ``demo``). They take paths and values, never print (progress lines go
to an optional ``echo`` callback), return a result whose ``summary()`` is the text the command
line shows, and raise the errors of :data:`forecast.jobs.common.USER_ERRORS` for what a user
can get wrong. The CLI (:mod:`forecast.cli`), the demo, the tests and a researcher's script call them::

    from features.panel import PanelSpec
    from forecast.jobs.data import make_panel
    from forecast.jobs.experiments import run_experiment

    print(make_panel(PanelSpec(events=("ged.csv",), covariates="covariates.csv"), "panel.parquet").summary())
    run = run_experiment("experiments/full.toml", register_as="iraq-incidents")
"""
