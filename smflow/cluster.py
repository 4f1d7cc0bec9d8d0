"""Where the heavy tasks run their array work: a Dask distributed cluster, or this process.

The daily science (:func:`smflow.daily.daily_science`) is a dask graph, one task per spatial chunk
of cells; :func:`dask_cluster` decides which scheduler runs it, so every deployment takes the same
code path:

* ``SMFLOW_DASK_SCHEDULER`` set (e.g. ``tcp://scheduler:8786``): a :class:`distributed.Client` on
  that scheduler; the chunks run on its workers (a Kubernetes cluster of dask-kubernetes, an HPC
  queue of dask-jobqueue, or any ``dask scheduler`` / ``dask worker`` pair; see docs/scale.md).
  The workers need this project installed (they import :mod:`smflow.daily`).
* otherwise dask's threaded scheduler in the task's process, one thread per core (the compiled
  kernels release the GIL), whatever the domain and whether the windows are lazy or in memory.
  Measured on the 2-core machine (``benchmarks/README.md``, "Global pipeline"): the global
  0.25 degree ``compute_products`` with lazy windows (runs 1-2, before the tiles were read once per
  pass) took 307 s and peaked at 1.83 GiB on threads against 438 s and 2.07 GiB on a
  ``distributed.LocalCluster`` of threads (which pickles the graph and runs a scheduler and a
  worker beside the science); at 10^6 cells of the science alone,
  161 s / 1.25 GiB against 246 s / 1.37 GiB. With windows in memory a distributed client would
  also pickle them into the graph (3.1 GiB instead of 1.2 GiB at 100,000 cells).

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
#: Seconds to wait for the configured scheduler before failing the task.
CONNECT_TIMEOUT_S = 30


def scheduler_address() -> str | None:
    """The configured scheduler (``SMFLOW_DASK_SCHEDULER``), or None."""
    return os.environ.get(SCHEDULER_ENV, "").strip() or None


@contextmanager
def dask_cluster(cells: int, *, address: str | None = None) -> Iterator[str]:
    """Run the dask computations of the ``with`` block on the configured cluster, else on threads.

    Parameters
    ----------
    cells : int
        Cells of the domain (logged).
    address : str, optional
        Scheduler address; default ``SMFLOW_DASK_SCHEDULER``.

    Yields
    ------
    str
        What runs the chunks: ``"distributed tcp://..."`` or ``"threads"`` (logged; for the run's
        lineage).

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
    with dask.config.set(scheduler="threads"):
        log.info("daily science on dask's threaded scheduler (%d threads, %d cells)", os.cpu_count() or 1, cells)
        yield "threads"
