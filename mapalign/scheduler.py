"""Where independent tasks run: in this process (the default, nothing imported) or on Dask.

mapalign hands a scheduler only independent tasks: per-language fits, dictionaries induced
for one pair of languages, per-pair evaluations. A task is a module-level function of one
item and keyword arguments; large inputs shared by every task (the languages' spaces) are
``share``d once. On Dask they are scattered to every worker, and ``map`` is
``Client.map`` followed by ``Client.gather``: Dask does the scheduling.

``open_scheduler(None)`` runs in this process; ``"local"`` starts a
``dask.distributed.LocalCluster`` of worker processes (one thread each) for the length of the
``with`` block; anything else is the address of a running Dask scheduler
(``tcp://host:8786``).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, List, Optional, Sequence

from .errors import MissingExtraError, option


class InProcess:
    name = "in-process"

    def share(self, value):
        return value

    def map(self, fn: Callable, items: Sequence, **kwargs) -> List:
        return [fn(item, **kwargs) for item in items]

    def describe(self) -> dict:
        return {"scheduler": self.name}


class DaskScheduler:
    def __init__(self, client, cluster=None):
        from distributed import Future

        self.client, self.cluster = client, cluster
        self.name = "dask"
        self._future = Future

    def share(self, value):
        # a one-element list, so that a dict is scattered as one object, not value by value
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    def map(self, fn: Callable, items: Sequence, **kwargs) -> List:
        if not items:
            return []
        # every shared argument goes to the workers as data (a future), never embedded in
        # the task graph, whose keys could then collide with the arguments' names
        kwargs = {k: v if isinstance(v, self._future) else self.share(v)
                  for k, v in kwargs.items()}
        futures = self.client.map(fn, list(items), pure=False, **kwargs)
        return self.client.gather(futures)

    def describe(self) -> dict:
        workers = self.client.scheduler_info().get("workers", {})
        return {"scheduler": self.name, "address": self.client.scheduler.address,
                "local_cluster": self.cluster is not None, "workers": len(workers)}


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("a Dask scheduler (dask.distributed)", "dask") from None
    return distributed


def _workers_local_only() -> str:
    return f"{option('workers', python='workers')} sizes a local cluster: it needs " \
        f"{option('scheduler', 'local')}"


def check_scheduler(spec: Optional[str] = None, workers: Optional[int] = None) -> None:
    """Fail before any file is read when ``spec`` cannot be opened as asked."""
    if spec in (None, "", "in-process"):
        if workers is not None:
            raise ValueError(_workers_local_only())
        return
    _distributed()
    if spec != "local" and workers is not None:
        raise ValueError(_workers_local_only())


@contextlib.contextmanager
def open_scheduler(spec: Optional[str] = None, workers: Optional[int] = None
                   ) -> Iterator[object]:
    """The scheduler for ``spec`` (None or ``"in-process"``, ``"local"``, or an address),
    closed (its local cluster shut down) on leaving the block."""
    check_scheduler(spec, workers)
    if spec in (None, "", "in-process"):
        yield InProcess()
        return
    distributed = _distributed()
    if spec == "local":
        cluster = distributed.LocalCluster(n_workers=workers or 2, threads_per_worker=1,
                                           processes=True, dashboard_address=None)
        client = distributed.Client(cluster)
    else:
        cluster, client = None, distributed.Client(spec)
    try:
        yield DaskScheduler(client, cluster)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
