"""Values shared with `_launcher.py`, which runs standalone and repeats them (a test checks they agree)."""

LAUNCHER_FAILED = 125
LAUNCHER_MARKER = "allin-sandbox launcher failed:"
