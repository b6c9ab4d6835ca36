"""The scheduled refresh: one command that brings the forecasts up to date, safe to run any time.

``forecast refresh --config refresh.toml`` (see ``deploy/refresh.toml``) runs these steps,
logging one timestamped line per step:

1. **config** – read and validate the configuration (nothing is written before it passes).
2. **lock** – take ``<outputs>/refresh.lock`` (:class:`filelock.FileLock`, an ``flock``
   held by the process: the kernel drops it when the process dies, even by SIGKILL, so a
   killed run never leaves a stale lock). A second run while one holds it exits with
   :attr:`ExitCode.LOCKED`.
3. **fetch** – local event/covariate files are used as they are; URL sources are downloaded
   into ``<outputs>/downloads`` and checked against their SHA-256 (:mod:`features.download`;
   an unchanged file is not downloaded again).
4. **build** – the panel, in memory, by the same code as ``forecast data build``.
5. **check** – a new complete month exists when the panel's vintage (its last complete
   month) is later than the latest origin in the ledger. If not, the job says so and exits 0
   having written nothing (``--force`` goes on; the ledger still takes nothing it holds).
6. **model** – ``models:/NAME@champion`` from the MLflow registry (or the configured
   fallback model, fitted on the panel, when there is no champion: MLflow says there is no
   such model, version or alias, or the SQLite store does not exist yet; else
   :attr:`ExitCode.NO_CHAMPION`). Any other failure of the store is :attr:`ExitCode.TRACKING`. A champion fitted on data after the panel's last month is
   refitted with the same hyperparameters on the panel up to that month, so no forecast
   uses data after its origin.
7. **forecast** – months origin+1..origin+H for every unit.
8. **files** – the panel (``panel.parquet`` + metadata + quarantine) and
   ``forecasts/<origin>.csv``, written atomically together.
9. **report** – ``reports/<origin>.html`` (:func:`forecast.report.write_report`, atomic),
   with the ledger's earlier forecasts scored against the new actuals.
10. **track** – an MLflow run in the experiment ``refresh``: inputs, vintage, model
    version, output paths as parameters; scores of past forecasts as metrics; the forecast
    file and report as artifacts. Transient errors of a tracking server are retried with
    back-off; a server that does not answer within the request deadline, one that is not
    MLflow, and a local store that fails are not (exit 6, saying which).
11. **ledger** – one transaction appends the new forecasts, the actuals and scores of
    earlier forecasts whose target month now has data, and the refresh row naming the
    MLflow run. This commit is the moment the refresh happens.

Why this order survives a kill at any point
-------------------------------------------
The ledger is the record of what was issued, and it is written last, in one transaction.
Until that commit the ledger is exactly as before (a kill inside the transaction is rolled
back by SQLite's journal or PostgreSQL), so the next run sees the month as new and does the
whole refresh again; files from the killed run are replaced atomically by the same names
(``forecasts/<origin>.csv``, ``reports/<origin>.html``), and the reports of earlier months
are never touched. After the commit nothing is left to do. Every file is written to a
temporary name and renamed into place, so no reader ever sees half a file. A run killed
during or after step 10 leaves its MLflow run (RUNNING or FINISHED) that the ledger does not
name; the next run of the same origin and ledger reuses it (or, when its parameters differ,
closes and deletes it), so one issue has one MLflow run.

Testing hook
------------
``FORECAST_REFRESH_PAUSE_AT=<step>[,<step>...]`` makes the job log ``paused at <step>`` and
sleep (``FORECAST_REFRESH_PAUSE_SECONDS``, default 600) when it reaches that point, so a
test can kill it there: ``locked``, ``panel-built``, ``model-loaded``, ``files-written``,
``report-written``, ``tracked``, ``ledger-transaction`` (inside the open ledger transaction,
every row inserted, not committed) and ``committed``. Leave it unset in production.

Exit codes (:class:`ExitCode`): 0 refreshed or nothing new; 1 configuration mistake or
unexpected error; 2 bad command line; 3 bad input data (validation, download, checksum);
4 no champion and no fallback; 5 another refresh holds the lock; 6 the MLflow store failed
(a server unreachable after the retries, silent past the request deadline, or not MLflow; a
store that cannot be read); 7 ledger unreachable or refusing the write.
"""

from __future__ import annotations

from forecast.refresh.config import LOCK_NAME, RefreshConfig, load_config
from forecast.refresh.errors import configure_logging, log
from forecast.refresh.guard import PAUSE_ENV, PAUSE_SECONDS_ENV, STEPS
from forecast.refresh.job import RefreshResult, run_refresh
from forecast.errors import ExitCode, RefreshError

__all__ = ["LOCK_NAME", "PAUSE_ENV", "PAUSE_SECONDS_ENV", "STEPS", "ExitCode", "RefreshConfig", "RefreshError",
           "RefreshResult", "configure_logging", "load_config", "log", "run_refresh"]
