"""A cheap task with no database connection: it reads its parameters from the marker
file and leaves its result in the run directory (the engine records exit and files)."""

import json
import os
import sys
import time

marker = json.load(open("autopot_run.json"))
params = marker["params"]
with open("started.log", "a") as fh:  # one line per execution: a repeated run shows here
    fh.write(f"{os.getpid()} {time.time()}\n")
if params["sleep"]:
    time.sleep(params["sleep"])
if params["fail"]:
    print(f"work {params['i']}: failing on purpose", file=sys.stderr)
    sys.exit(3)
with open("result.txt", "w") as fh:
    fh.write(str(params["i"] ** 2))
