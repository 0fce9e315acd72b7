"""Calling a store from async code (the API) without blocking the event loop.

Stores are synchronous: the Neo4j driver's sync API and SQLite are both well-proven, and one
implementation of each operation is easier to keep identical across stores. The API awaits
them through :class:`AsyncStore`, which runs each call in a worker thread and bounds how many
run at once, so a burst of requests queues instead of exhausting the driver's pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from graph.store import Store

P = ParamSpec("P")
R = TypeVar("R")


class AsyncStore:
    """``await astore.run(astore.store.get_ci, ci_id)``: any store method, off the loop."""

    def __init__(self, store: Store, *, max_concurrency: int = 16) -> None:
        self.store = store
        self._slots = asyncio.Semaphore(max_concurrency)

    async def run(self, method: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        async with self._slots:
            return await asyncio.to_thread(method, *args, **kwargs)
