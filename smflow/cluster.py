"""Where the heavy tasks run their array work: a Dask distributed cluster, or this process.

The daily science (:func:`smflow.daily.daily_science`) is a dask graph, one task per spatial chunk
of cells; :func:`dask_cluster` decides which scheduler runs it, so every deployment takes the same
code path:

* ``SMFLOW_DASK_SCHEDULER`` set (e.g. ``tcp://scheduler:8786``): a :class:`distributed.Client` on
  that scheduler; the chunks run on its workers (a Kubernetes cluster of dask-kubernetes, an HPC
  queue of dask-jobqueue, or any ``dask scheduler`` / ``dask worker`` pair; see docs/scale.md).
  The workers need this project installed (they import :mod:`smflow.daily`).
* otherwise, when the tasks read their own inputs (lazy, dask-backed windows) on a domain of at
  least :data:`LOCAL_CLUSTER_MIN_CELLS` cells: a :class:`distributed.LocalCluster` of threads in
  this process (the compiled kernels release the GIL), one thread per core;
* otherwise dask's threaded scheduler: for small domains (the 130-cell Big Island) a LocalCluster
  would take ~1-2 s to start and stop, against a few milliseconds of science; and when the
  windows are already in memory (numpy, today's store), a distributed client pickles the arrays
  it is given into the task graph, a second and third copy of the inputs (measured 3.1 GiB instead
  of 1.2 GiB at 100,000 cells x 180 days), where threads share them.

``dask.distributed`` is imported only here, inside the call (never when a DAG file is parsed).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

#: Environment variable with the address of the Dask scheduler the heavy tasks submit to.
SCHEDULER_ENV = "SMFLOW_DASK_SCHEDULER"
#: Below this many cells the threaded scheduler runs the chunks (no cluster start-up).
LOCAL_CLUSTER_MIN_CELLS = 100_000
#: Seconds to wait for the configured scheduler before failing the task.
CONNECT_TIMEOUT_S = 30


def scheduler_address() -> str | None:
    """The configured scheduler (``SMFLOW_DASK_SCHEDULER``), or None."""
    return os.environ.get(SCHEDULER_ENV, "").strip() or None


@contextmanager
def dask_cluster(cells: int, *, address: str | None = None, inputs_in_memory: bool = False) -> Iterator[str]:
    """Run the dask computations of the ``with`` block on the configured cluster.

    Parameters
    ----------
    cells : int
        Cells of the domain (decides between a LocalCluster and the threaded scheduler when no
        scheduler is configured).
    address : str, optional
        Scheduler address; default ``SMFLOW_DASK_SCHEDULER``.
    inputs_in_memory : bool, default False
        The graph carries numpy arrays (windows already read): without a configured scheduler
        they are shared by threads rather than pickled into a local cluster's graph.

    Yields
    ------
    str
        What runs the chunks: ``"distributed tcp://..."``, ``"local cluster"`` or ``"threads"``
        (logged; for the run's lineage).

    Raises
    ------
    OSError
        The configured scheduler does not answer within :data:`CONNECT_TIMEOUT_S` seconds (the
        message names the address and the variable to fix).
    """
    import dask

    address = address or scheduler_address()
    if address:
        from distributed import Client

        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot reach the Dask scheduler {address!r} set in {SCHEDULER_ENV}: {exc}; "
                          f"start it, fix the address, or unset {SCHEDULER_ENV} to compute in this process") from exc
        with client, dask.config.set(scheduler=client):
            log.info("daily science on the Dask cluster at %s (%d cells)", address, cells)
            yield f"distributed {address}"
        return
    if cells < LOCAL_CLUSTER_MIN_CELLS or inputs_in_memory:
        with dask.config.set(scheduler="threads"):
            yield "threads"
        return
    from distributed import Client, LocalCluster

    # dashboard_address: a free loopback port (None would still bind the scheduler's HTTP routes
    # to 8787, which another service of the machine may hold)
    with LocalCluster(processes=False, n_workers=1, threads_per_worker=os.cpu_count() or 1,
                      dashboard_address="127.0.0.1:0", memory_limit=0) as local, \
            Client(local, set_as_default=False) as client, dask.config.set(scheduler=client):
        log.info("daily science on a local Dask cluster (%d threads, %d cells)", os.cpu_count() or 1, cells)
        yield "local cluster"
