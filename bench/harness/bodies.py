"""Request bodies for the anomaly stage's benchmark: benign JSON API payloads of a given size
(orders with names, addresses, notes in prose), seeded, so every run sends the same bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

SIZES = {"json1k": 1024, "json16k": 16 * 1024}
CONTENT_TYPE = "application/json"

_NAMES = ["Ana O'Brien", "Jean-Luc Picard", "Zoë Müller", "Kofi Annan", "Mei Ling", "Sam Smith"]
_STREETS = ["12 Rue de l'Église", "221B Baker Street", "1600 Amphitheatre Pkwy", "5 Main St., Apt 3"]
_NOTES = ["Please select the best delivery window; leave it at the door.",
          "Gift wrap, and drop the price tag from the box.",
          "Order #4411 arrived damaged - can you union it with the replacement?",
          "Call before delivery: +44 20 7946 0958.",
          "The 2-pack (50% off) was cheaper last week; can you match it?"]


def payload(size: int, seed: int = 7) -> bytes:
    """A JSON order whose encoding is exactly `size` bytes (padded in a note)."""
    rnd = random.Random(seed)
    items = []
    doc = {"customer": {"name": rnd.choice(_NAMES), "email": "ana.obrien@example.com",
                        "address": rnd.choice(_STREETS), "country": "IE"},
           "items": items, "note": ""}
    while len(json.dumps(doc, separators=(",", ":")).encode()) < size - 200:
        items.append({"sku": f"SKU-{rnd.randrange(10**6):06d}", "qty": rnd.randrange(1, 5),
                      "price": round(rnd.uniform(1, 300), 2), "note": rnd.choice(_NOTES)})
    raw = json.dumps(doc, separators=(",", ":")).encode()
    if len(raw) > size:
        raise ValueError(f"cannot fit an order in {size} bytes")
    filler = " ".join(rnd.choice(_NOTES) for _ in range(size // 20))
    doc["note"] = filler[: size - len(raw)]
    raw = json.dumps(doc, separators=(",", ":")).encode()
    assert len(raw) == size, (len(raw), size)
    return raw


def write(out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, size in SIZES.items():
        path = out_dir / f"body-{name}.json"
        path.write_bytes(payload(size))
        files[name] = path
    return files
