#!/usr/bin/env python3
"""Deterministic benchmark datasets for bench/run.sh.

Everything (the item list, sizes, contents, and the 1% change set) is derived
from a fixed seed, so two machines build byte-identical trees.

  make_dataset.py generate KIND DIR     write the dataset into DIR (must be empty or missing)
  make_dataset.py change   KIND DIR     apply the change set to DIR (which holds the dataset)
  make_dataset.py revert   KIND DIR     undo the change set (restores the original content)
  make_dataset.py info     KIND         print a JSON summary (items, bytes, change-set bytes)

KIND is `tiny` (1,000 items, for a smoke test), `small` (100,000 items of 1-8 KiB in 1,000 folders) or `large`
(2,000 items, exactly 1 GiB: six files of 50-150 MiB, the rest 1.5 KiB-1.5 MiB).

The change set is 1% of the items modified in place (same size, same inode: a
4 KiB region, or the whole item if it is smaller, is overwritten), 0.5% of the
items deleted and 0.5% new items added. For `large`, one of the six big files
is always among the modified items. `revert` rewrites the modified regions with
their original bytes, deletes the added items and re-creates the deleted ones,
which is itself a 1% change of the same shape.

Content is a seeded PRNG stream (random.Random.randbytes), one stream per
1 MiB chunk of each item, so it is incompressible and can be regenerated for
any region.
"""

import json
import math
import os
import random
import sys

SEED = 20240611
CHUNK = 1 << 20
KIB = 1024
MIB = 1 << 20
MOD_REGION = 4 * KIB


class Item:
    __slots__ = ("idx", "path", "size")

    def __init__(self, idx, path, size):
        self.idx = idx
        self.path = path
        self.size = size


def small_items():
    rng = random.Random(f"{SEED}/small/sizes")
    items = []
    for i in range(100_000):
        folder = i // 100  # 1,000 leaf folders of 100 items, under 10 top folders
        path = f"s{folder // 100:02d}/f{folder:04d}/item{i:06d}.dat"
        items.append(Item(i, path, rng.randint(1 * KIB, 8 * KIB)))
    return items


LARGE_BIG = [50, 70, 90, 110, 130, 150]  # MiB
LARGE_COUNT = 2_000
LARGE_TOTAL = 1 << 30  # 1 GiB


def _loguniform(rng, lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def large_items():
    rng = random.Random(f"{SEED}/large/sizes")
    n_rest = LARGE_COUNT - len(LARGE_BIG)
    raw = [_loguniform(rng, 4 * KIB, 4 * MIB) for _ in range(n_rest)]
    budget = LARGE_TOTAL - sum(LARGE_BIG) * MIB
    scale = budget / sum(raw)
    rest = [max(1 * KIB, int(r * scale)) for r in raw]
    rest[-1] += budget - sum(rest)  # make the total exactly 1 GiB
    big_at = {i * (LARGE_COUNT // len(LARGE_BIG)) + 7: mb for i, mb in enumerate(LARGE_BIG)}
    items = []
    it = iter(rest)
    for i in range(LARGE_COUNT):
        size = big_at[i] * MIB if i in big_at else next(it)
        folder = i // 100  # 20 folders of 100 items
        items.append(Item(i, f"conf{folder:02d}/doc{i:05d}.bin", size))
    return items


def tiny_items():
    """A 1,000-item version of `small` for a quick smoke test of the harness."""
    rng = random.Random(f"{SEED}/tiny/sizes")
    return [
        Item(i, f"f{i // 100:02d}/item{i:04d}.dat", rng.randint(1 * KIB, 8 * KIB))
        for i in range(1_000)
    ]


def items_for(kind):
    if kind == "tiny":
        return tiny_items()
    if kind == "small":
        return small_items()
    if kind == "large":
        return large_items()
    raise SystemExit(f"unknown kind {kind!r}: use tiny, small or large")


def changeset(kind, items):
    """(modified, deleted, added): lists of Item. Added items have idx >= 1_000_000."""
    n = len(items)
    n_mod, n_del, n_add = n // 100, n // 200, n // 200
    rng = random.Random(f"{SEED}/{kind}/changes")
    big = [it for it in items if it.size >= 50 * MIB]
    pool = [it for it in items if it.size < 50 * MIB]
    chosen = rng.sample(pool, n_mod + n_del)
    modified = chosen[:n_mod]
    deleted = chosen[n_mod:]
    if big:
        modified[-1] = big[3]  # the 110 MiB file
    added = []
    sizes = [it.size for it in pool]
    for j in range(n_add):
        host = rng.choice(items).path.rsplit("/", 1)[0]
        size = rng.choice(sizes)
        added.append(Item(1_000_000 + j, f"{host}/new{j:05d}.dat", size))
    return modified, deleted, added


def chunk_bytes(kind, item, k):
    """Chunk k (1 MiB) of an item's original content."""
    n = min(CHUNK, item.size - k * CHUNK)
    return random.Random(f"{SEED}/{kind}/{item.idx}/{k}").randbytes(n)


def content(kind, item, start, length):
    """The original bytes [start, start+length) of an item."""
    out = bytearray()
    for k in range(start // CHUNK, (start + length - 1) // CHUNK + 1):
        chunk = chunk_bytes(kind, item, k)
        lo = max(start - k * CHUNK, 0)
        hi = min(start + length - k * CHUNK, len(chunk))
        out += chunk[lo:hi]
    return bytes(out)


def write_item(kind, root, item):
    with open(os.path.join(root, item.path), "wb") as f:
        for k in range((item.size + CHUNK - 1) // CHUNK):
            f.write(chunk_bytes(kind, item, k))


def mod_region(kind, item):
    length = min(item.size, MOD_REGION)
    rng = random.Random(f"{SEED}/{kind}/{item.idx}/region")
    return rng.randint(0, item.size - length), length


def overwrite(root, item, offset, data):
    # r+b: same file, same inode, same size; only the region changes.
    with open(os.path.join(root, item.path), "r+b") as f:
        f.seek(offset)
        f.write(data)


def generate(kind, root):
    items = items_for(kind)
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        raise SystemExit(f"{root} is not empty")
    made = set()
    for it in items:
        d = os.path.dirname(os.path.join(root, it.path))
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        write_item(kind, root, it)


def change(kind, root, revert):
    items = items_for(kind)
    modified, deleted, added = changeset(kind, items)
    for it in modified:
        off, length = mod_region(kind, it)
        if revert:
            data = content(kind, it, off, length)
        else:
            data = random.Random(f"{SEED}/{kind}/{it.idx}/mod").randbytes(length)
        overwrite(root, it, off, data)
    if revert:
        for it in added:
            os.remove(os.path.join(root, it.path))
        for it in deleted:
            write_item(kind, root, it)
    else:
        for it in deleted:
            os.remove(os.path.join(root, it.path))
        for it in added:
            write_item(kind, root, it)


def info(kind):
    items = items_for(kind)
    modified, deleted, added = changeset(kind, items)
    folders = {it.path.rsplit("/", 1)[0] for it in items}
    return {
        "kind": kind,
        "items": len(items),
        "bytes": sum(it.size for it in items),
        "folders": len(folders),
        "min_size": min(it.size for it in items),
        "max_size": max(it.size for it in items),
        "modified": len(modified),
        "added": len(added),
        "deleted": len(deleted),
        # What an item-granular sync must copy: whole modified items plus new items.
        "changed_item_bytes": sum(it.size for it in modified) + sum(it.size for it in added),
        # The same in whole 4 KiB pages, the unit the kernel counts writes in.
        "changed_item_page_bytes": sum(-(-it.size // 4096) * 4096 for it in modified + added),
        # The bytes that actually differ: the overwritten regions plus new items.
        "changed_region_bytes": sum(mod_region(kind, it)[1] for it in modified)
        + sum(it.size for it in added),
        "deleted_bytes": sum(it.size for it in deleted),
    }


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, kind = argv[0], argv[1]
    if cmd == "info":
        print(json.dumps(info(kind)))
    elif cmd in ("generate", "change", "revert") and len(argv) == 3:
        root = argv[2]
        if cmd == "generate":
            generate(kind, root)
        else:
            change(kind, root, revert=(cmd == "revert"))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
