#!/bin/sh
exec "${AUTOPOT_PYTHON:-python3}" doIt.py
