"""Report processes whose command line contains a secret.

Usage: python3 cmdline_scan.py PATTERN_FILE
The secret is read from PATTERN_FILE (mode 0600), never from argv, so this scan cannot find
itself. Prints JSON {"scanned": N, "matches": [{"pid", "comm"}]}; the command lines themselves
are never printed.
"""
from __future__ import annotations

import json
import os
import sys


def main(pattern_file: str) -> dict:
    with open(pattern_file, "rb") as f:
        secret = f.read().strip()
    if not secret:
        raise SystemExit("empty pattern file")
    scanned = 0
    matches = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/comm", "rb") as f:
                comm = f.read().decode(errors="replace").strip()
        except OSError:
            continue  # the process ended meanwhile
        scanned += 1
        if secret in cmdline or secret in cmdline.replace(b"\0", b" "):
            matches.append({"pid": int(entry), "comm": comm})
    return {"scanned": scanned, "matches": matches}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
