"""Keep Python's cycle collector off the hot path of a long-running worker.

A batch allocates a few hundred thousand short-lived containers (records, dicts of
features, instalments), almost all freed by reference counting as soon as the batch is
sent. With the default thresholds (a young collection every 700 net allocations) the
collector still ran ~18 young collections per 100 applications, and an older-generation
one every ~60; a full one, every ~900, walks every live object: the models, Faust, the
clients. Measured in-process on memory stores, the collector took 220 of 587 µs per
application (README, "Fifth session").

So, once the engine is started: everything alive then (models, clients, caches built at
start) is moved to the permanent generation, which collections no longer walk, and young
collections run every `young` allocations instead of 700. Cycles are still collected, only
in larger, rarer steps.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap(young: int) -> None:
    """Freeze what is alive now and collect every `young` allocations (0: leave as is)."""
    if young <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
