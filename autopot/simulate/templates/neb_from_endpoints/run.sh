#!/bin/sh
# Runs in the run directory; the executor sets AUTOPOT_RUN_DIR and the database address.
exec "${AUTOPOT_PYTHON:-python3}" doIt.py
