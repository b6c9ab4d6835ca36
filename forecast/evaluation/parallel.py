"""Where a backtest's tasks run: joblib processes on this machine, or a Dask cluster.

Both backends run the same function on the same tasks and hand back each task's result as it
finishes; the caller sorts what it gathers, so results never depend on the backend, the
number of workers or the order of completion. Nothing here logs to MLflow: tracking stays
in the driver process, which receives the results.

Dask: ``scheduler=None`` starts a ``LocalCluster`` of ``n_jobs`` single-threaded worker
processes on 127.0.0.1 (no dashboard) and shuts it down afterwards; with an address
(``tcp://HOST:PORT``) the tasks go to that cluster's workers, which need this package
installed (the same version) and the panel is sent to them once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
from joblib import Parallel, delayed

from forecast.errors import BackendError

#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT = 10


def run_tasks(func: Callable, tasks: Sequence, args: tuple, *, backend: str = "joblib", n_jobs: int = 1,
              scheduler: str | None = None) -> Iterator:
    """Yield ``func(task, *args)`` for every task, in order of completion.

    Parameters
    ----------
    func
        A module-level function (it is pickled by reference to run in worker processes).
    tasks
        The tasks; each is passed as the first argument.
    args
        Further arguments, the same for every task (sent to each worker once with Dask).
    backend
        ``"joblib"`` or ``"dask"``.
    n_jobs
        joblib processes (1: run in this process), or the workers of the Dask
        ``LocalCluster`` started when ``scheduler`` is None.
    scheduler
        Address of a running Dask scheduler, ``tcp://HOST:PORT`` (Dask only).

    Raises
    ------
    BackendError
        Unknown backend, Dask not installed, or the scheduler cannot be reached within
        :data:`CONNECT_TIMEOUT` seconds.
    """
    if backend == "joblib":
        yield from _joblib(func, tasks, args, n_jobs)
    elif backend == "dask":
        yield from _dask(func, tasks, args, n_jobs, scheduler)
    else:
        raise BackendError(f"unknown backend {backend!r}; use joblib or dask")


def _joblib(func, tasks, args, n_jobs: int) -> Iterator:
    if n_jobs == 1 or len(tasks) <= 1:
        # In this process: no pickling, and nested backtests (an ensemble's) share its caches.
        for task in tasks:
            yield func(task, *args)
        return
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    yield from parallel(delayed(func)(task, *args) for task in tasks)


def _connect(client_class, scheduler: str):
    """A client of the scheduler at ``scheduler``, or a :class:`BackendError` within ``CONNECT_TIMEOUT`` s.

    ``Client(timeout=...)`` bounds the TCP connect but not the handshake after it: a port that
    accepts connections and never answers holds it for good. So the connection is made in a
    daemon thread and abandoned at the deadline (a daemon thread does not keep the process alive).
    """
    box: dict = {}

    def connect() -> None:
        try:
            box["client"] = client_class(scheduler, timeout=CONNECT_TIMEOUT)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT + 1)
    exc = box.get("error")
    if "client" in box:
        return box["client"]
    why = "no answer" if exc is None else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
    if exc is not None and not isinstance(exc, (OSError, TimeoutError, ValueError)):
        raise exc
    raise BackendError(
        f"cannot reach the Dask scheduler at {scheduler!r} within {CONNECT_TIMEOUT} s ({why}); "
        "start one with 'dask scheduler' and workers with 'dask worker ADDRESS', or leave the "
        "address out to start a local cluster"
    )


def _dask(func, tasks, args, n_jobs: int, scheduler: str | None) -> Iterator:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BackendError("the dask backend needs dask.distributed: pip install 'insurgency-forecast[dask]'") from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=max(int(n_jobs), 1), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    else:
        client = _connect(Client, scheduler)
    try:
        # Frames (the panel, the largest argument) go to every worker once, not once per task.
        shared = [client.scatter(a, broadcast=True) if isinstance(a, pd.DataFrame) else a for a in args]
        futures = [client.submit(func, task, *shared, pure=False) for task in tasks]
        for _, result in as_completed(futures, with_results=True):
            yield result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
