"""How every benchmark ends: the JSON summary, then the Markdown block for RESULTS.md."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def report(
    out: dict[str, Any], json_path: Path | None, markdown: Callable[[dict[str, Any], str], str]
) -> None:
    """Add the load average to `out`, print it as JSON (also written to `json_path`), then the
    Markdown block `markdown(out, command)` names the command line that produced it."""
    out["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = json.dumps(out, indent=2)
    if json_path is not None:
        json_path.write_text(text + "\n")
    print(text)
    print()
    print(markdown(out, "python benchmarks/" + " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])))
