"""Run one bridge sync and SIGKILL this process right after its first committed label.

Usage: python _sync_and_die.py URL TOKEN PROJECT DIRECTORY
"""

import os
import signal
import sys

from _setup import bridge, digits_pool, sync

from skdynal.persistence import ResumableLoop

original = ResumableLoop.commit_label


def commit_then_die(self, pool_id, label):
    result = original(self, pool_id, label)
    print(f"committed {pool_id}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return result


ResumableLoop.commit_label = commit_then_die
url, token, project, directory = sys.argv[1:5]
X_pool, _ = digits_pool()
sync(bridge(url, token, int(project), directory), X_pool)
print("not killed", flush=True)
