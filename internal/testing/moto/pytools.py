#!/usr/bin/env python3
"""Exit 0 when this interpreter has every pinned tool of requirements.txt.

The Makefile runs it with the machine's python3: when it exits 0 the tests
use that interpreter, otherwise `make pytools` installs the pinned versions
into .venv. It checks versions only (no network, no import side effects
beyond moto.server, whose extras the tests need).
"""

import importlib.metadata
import os
import re
import sys

REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$")


def missing(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = REQUIREMENT.match(line)
            if not m:
                out.append(f"{line} (not pinned as name==version)")
                continue
            name, want = m.groups()
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                out.append(f"{name}=={want} (not installed)")
                continue
            if have != want:
                out.append(f"{name}=={want} (found {have})")
    try:
        import moto.server  # noqa: F401  the [server] extra: flask, flask-cors
    except ImportError as err:
        out.append(f"moto[server] ({err})")
    return out


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    gaps = missing(os.path.join(here, "requirements.txt"))
    for g in gaps:
        print(f"pytools: {sys.executable} lacks {g}", file=sys.stderr)
    sys.exit(1 if gaps else 0)
