"""``[core] hostname_callable`` for the Celery test: two workers on one machine, two names.

Airflow records ``task_instance.hostname`` from this callable; in a real deployment every worker
is its own host (or container) and the default, the FQDN, already tells them apart.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("NEWSFLOW_TEST_HOSTNAME") or socket.getfqdn()
