#!/usr/bin/env python3
"""A large deployment.toml for bench/deployment_load.sh.

  make_deployment.py POOLS FILE [SITES]

POOLS pools (rounded down to an even number) in POOLS/2 pairs, spread over
SITES sites (default 100): pool 2k and pool 2k+1 are partners, in neighbouring
sites. Each pool has two computers and a store of its own under stores/ (the
folders are not created: the loader does not need them). The first pool is the
CMS master. The output is deterministic.
"""

import sys


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pools = int(sys.argv[1]) // 2 * 2
    path = sys.argv[2]
    sites = int(sys.argv[3]) if len(sys.argv) == 4 else 100
    if pools < 2 or sites < 2:
        print("need at least 2 pools and 2 sites", file=sys.stderr)
        return 2
    fqdn = lambda i: f"pool{i}.big.example.com"
    out = [
        "[deployment]",
        'name = "big"',
        f'cms_master = "{fqdn(0)}"',
        "",
    ]
    for s in range(sites):
        out += ["[[site]]", f'identity = "Site{s + 1}"', f"site_id = {s + 1}", ""]
    for i in range(pools):
        partner = i + 1 if i % 2 == 0 else i - 1
        # Partners sit in neighbouring sites, never in one.
        site = (i // 2 * 2 + i % 2) % sites + 1
        out += [
            "[[pool]]",
            f'fqdn = "{fqdn(i)}"',
            f'site = "Site{site}"',
            f'backup_pool = "{fqdn(partner)}"',
            f'store = "stores/{fqdn(i)}"',
            f'computers = ["fe{i}a.big.example.com", "fe{i}b.big.example.com"]',
            "",
        ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
