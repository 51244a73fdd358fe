"""Never lose a paid label: a crash-safe label journal and resumable active learning loops.

:class:`LabelJournal` records every query round before its ids are handed out and commits
every label as it arrives (SQLite, WAL mode). :class:`ResumableLoop` wraps a modAL
``ActiveLearner`` with a journal and atomic, checksummed checkpoints, so that a loop killed
at any point resumes where it stopped and asks for the same next query as a loop that
never stopped.
"""

from ._checkpoint import CheckpointError, CheckpointWriteError, read_checkpoint, write_checkpoint
from ._journal import (
    JournalError,
    JournalIntegrityError,
    JournalLockedError,
    LabelJournal,
    RoundRecord,
)
from ._loop import ResumableLoop, ResumeWarning
from ._state import UntrustedCheckpointError

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "JournalError",
    "JournalIntegrityError",
    "JournalLockedError",
    "LabelJournal",
    "ResumableLoop",
    "ResumeWarning",
    "RoundRecord",
    "UntrustedCheckpointError",
    "read_checkpoint",
    "write_checkpoint",
]
