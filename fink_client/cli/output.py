"""Output helpers shared by the finkctl subcommands: JSON documents and offset tables."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing offsets loads confluent_kafka: not for `finkctl show`
    from fink_client.offsets import PartitionOffsets


def print_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout."""
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def format_offsets(rows: list[PartitionOffsets]) -> str:
    """Aligned text table of partition offsets (``finkctl topics --lag`` and ``offsets``)."""
    header = ("topic", "partition", "committed", "earliest", "end", "lag")
    cells = [header] + [
        (r.topic, str(r.partition), "-" if r.committed is None else str(r.committed),
         str(r.low), str(r.high), str(r.lag))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    return "\n".join(lines)
