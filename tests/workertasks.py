"""Tasks for worker-pool tests; module level so spawned workers can import them."""

from __future__ import annotations

import os
import time


def job(name: str) -> str:
    if name == "hang":
        time.sleep(60)
    if name == "mem":
        hog = []
        for _ in range(200):
            hog.append(bytearray(10 * 2**20))
            time.sleep(0.01)
    if name == "crash":
        os._exit(3)
    if name == "error":
        raise ValueError("bad input")
    return name.upper()
