"""A dynamicAL sampler whose first scored batch on any worker kills that worker process."""

import os

from skdynal import DynamicALSampler


class DiesOnceSampler(DynamicALSampler):
    """:class:`DynamicALSampler` that ends its process the first time it scores a batch.

    The first call anywhere creates ``marker`` (atomically) and exits at once, as a worker
    killed mid-round would; every later call appends its batch's row count to
    ``marker + ".log"`` and scores as usual.
    """

    def __init__(
        self,
        marker=None,
        gamma=2.0,
        batch_size=None,
        method="vmap",
        random_state=None,
        progress=False,
        selection="top_b",
        chunk_size=100,
    ):
        super().__init__(
            gamma=gamma,
            batch_size=batch_size,
            method=method,
            random_state=random_state,
            progress=progress,
            selection=selection,
            chunk_size=chunk_size,
        )
        self.marker = marker

    def score_batch(self, adapter, state, X_batch):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
        with open(self.marker + ".log", "a") as log:
            log.write(f"{len(X_batch)}\n")
        return super().score_batch(adapter, state, X_batch)
