"""A task that computes for ``sleep`` seconds and pushes its result (a scalar and an
array) through TaskContext: the result survives a database outage in its outcome file."""

import os
import signal
import time

import numpy as np

from autopot.task import TaskContext

with TaskContext.open() as ctx:
    with open("started.log", "a") as fh:  # one line per execution: a repeated run shows here
        fh.write(f"{os.getpid()} {time.time()}\n")
    time.sleep(ctx.params["sleep"])
    if ctx.params["kill_once"] and not os.path.exists("killed_once"):
        open("killed_once", "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does
    i = ctx.params["i"]
    ctx.path("result.txt").write_text(str(i * i))
    ctx.add_file("result.txt")
    ctx.push("value", i * i)
    ctx.push("vec", np.arange(3.0) * i)
