"""Label Studio bridge: people label the batches an active learning loop asks for.

Needs the optional extra: ``pip install 'skdynal[labelstudio]'`` (the official
``label-studio-sdk``; the ``label-studio`` server itself for :class:`LabelStudioServer`).
:class:`LabelStudioBridge` imports a pool as tasks, shows each round's batch in the Data
Manager, pulls finished annotations into a :class:`~skdynal.persistence.ResumableLoop`'s
label journal exactly once, retrains, consults a rule of :mod:`skdynal.stopping` and
queries the next batch; ``skdynal labelstudio`` is its command-line front end. See the
documentation page "Labeling with people".
"""

from ._bridge import LabelStudioBridge, SyncReport, connect
from ._server import LabelStudioServer, free_port
from ._tasks import array_image_tasks, image_file_tasks, label_config, png_data_uri

__all__ = [
    "LabelStudioBridge",
    "LabelStudioServer",
    "SyncReport",
    "array_image_tasks",
    "connect",
    "free_port",
    "image_file_tasks",
    "label_config",
    "png_data_uri",
]
