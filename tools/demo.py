#!/usr/bin/env python3
"""`./demo.sh`: `driftwatch demo` from a checkout (`python tools/demo.py --help`).

Everything is in checks/commands/demo.py; this only puts the repository on sys.path so it
works before `pip install .`.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from checks.cli import main

    sys.argv = ["driftwatch", "demo", *sys.argv[1:]]
    main()
