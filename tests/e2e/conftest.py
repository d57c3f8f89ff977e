"""The browser tests import the server fixtures' builders from ``tests/test_server.py``."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
