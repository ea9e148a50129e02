"""`flash.py blocklist keygen|build|delta|inspect|check`: build, sign, inspect and check
blocklist images (the format: docs/blocklist.md; the builder: flashtool/lists/blocklist.py)."""

import time
from pathlib import Path

from flashtool.lists.blocklist import (
    DEFAULT_MAX_AGE,
    KEY_DIR,
    build_delta,
    build_image,
    design_fp,
    fmt,
    keygen,
    load_public,
    lookup,
    parse_ns,
    read_changes,
    read_entries,
    verify_image,
)
from flashtool.release.keys import load_private


def _pub_arg(args):
    return load_public(args.pub or KEY_DIR / "blocklist.pub.json")


def cmd_keygen(args):
    pem, pub = keygen(args.dir, e=args.e)
    print("private key %s (keep it off the readers)\npublic key  %s" % (pem, pub))


def cmd_build(args):
    from rich.progress import Progress

    t0 = time.time()
    entries = read_entries(args.csv)
    priv = load_private(args.key or KEY_DIR / "blocklist.pem")
    try:
        with Progress() as bar:
            tasks = {}

            def progress(stage, done, total):
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done)

            img = build_image(entries, priv, args.seq, max_age_s=args.max_age, fp=args.fp,
                              progress=progress)
    except ValueError as e:
        raise SystemExit("blocklist build: %s" % e) from None
    Path(args.out).write_bytes(img)
    print("%s: %d entries, %d bytes (%.2f bits/entry), seq %d, %.1f s"
          % (args.out, len(entries), len(img), len(img) * 8 / max(1, len(entries)), args.seq,
             time.time() - t0))


def cmd_delta(args):
    base = Path(args.base).read_bytes()
    members = read_entries(args.list) if args.list else None
    img = build_delta(base, read_changes(args.csv), load_private(args.key or
                      KEY_DIR / "blocklist.pem"), args.seq, members=members)
    Path(args.out).write_bytes(img)
    print("%s: delta seq %d on list %d, %d bytes" % (args.out, args.seq,
                                                      fmt.Header(base, len(base)).seq, len(img)))


def cmd_inspect(args):
    img = Path(args.image).read_bytes()
    h = fmt.Header(img, len(img))
    kind = {fmt.KIND_FULL: "full", fmt.KIND_DELTA: "delta"}[h.kind]
    print("%s list seq %d%s, %d bytes, issued %s UTC, max age %d s, key id %s" % (
        kind, h.seq, " (base %d)" % h.base_seq if h.kind == fmt.KIND_DELTA else "", len(img),
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(h.issued)), h.max_age_s,
        h.key_id.hex()))
    acts = {v: k for k, v in fmt.ACTIONS.items()}
    for cid, act, stale, flags, n, name, group, den in h.cats:
        print("  %d %-15s %-6s stale->%-6s%s%s %9d entries, group %d, budget %.0e" % (
            cid, name, acts[act], acts[stale], " health" if flags & fmt.FLAG_HEALTH else "",
            " pass-set" if flags & fmt.FLAG_PASS_SET else "", n, group, 1 / den))
    if h.kind == fmt.KIND_FULL:
        n = sum(c[4] for c in h.cats)
        print("  %d fingerprint pages, %d exact records, %.2f bits/entry, design "
              "false-positive rate per group %s" % (
                  h.npages, h.nrec, len(img) * 8 / max(n, 1),
                  ", ".join("%.2g" % x for x in design_fp(img))))
    if h.kind == fmt.KIND_DELTA:
        print("  %d records" % h.nrec)
    try:
        verify_image(img, _pub_arg(args))
        print("signature OK")
    except (fmt.ListError, OSError) as e:
        print("NOT VERIFIED: %s" % e)
        return 1


def cmd_check(args):
    img = Path(args.image).read_bytes()
    delta = Path(args.delta).read_bytes() if args.delta else None
    cid = lookup(img, parse_ns(args.ns), args.ident.encode(), delta)
    cats = {c[0]: c[5] for c in fmt.Header(img, len(img)).cats}
    print("%s %s: %s" % (args.ns, args.ident, "listed in %d %s" % (cid, cats[cid]) if cid
                         else "not listed"))

def register(sub):
    p = sub.add_parser("blocklist", help="build, sign, inspect and check blocklist images")
    s = p.add_subparsers(dest="bl_cmd", required=True)
    k = s.add_parser("keygen", help="generate the list signing key pair")
    k.add_argument("--dir", default=str(KEY_DIR))
    k.add_argument("--e", type=int, default=65537, choices=(3, 65537))
    k.set_defaults(func=cmd_keygen)
    b = s.add_parser("build", help="full list from a CSV namespace,identifier,category")
    b.add_argument("csv")
    b.add_argument("--out", required=True)
    b.add_argument("--seq", type=int, required=True)
    b.add_argument("--key")
    b.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE)
    b.add_argument("--fp", type=float, default=None,
                   help="one budget for every category (default: each category's own)")
    b.set_defaults(func=cmd_build)
    d = s.add_parser("delta", help="cumulative delta from a CSV add|remove,ns,identifier,cat")
    d.add_argument("base")
    d.add_argument("csv")
    d.add_argument("--out", required=True)
    d.add_argument("--seq", type=int, required=True)
    d.add_argument("--key")
    d.add_argument("--list", help="the base list's CSV: resolve fingerprint collisions of the "
                   "changed identifiers exactly")
    d.set_defaults(func=cmd_delta)
    i = s.add_parser("inspect", help="print an image's header and verify it")
    i.add_argument("image")
    i.add_argument("--pub")
    i.set_defaults(func=cmd_inspect)
    c = s.add_parser("check", help="is an identifier listed?")
    c.add_argument("image")
    c.add_argument("ns")
    c.add_argument("ident")
    c.add_argument("--delta")
    c.set_defaults(func=cmd_check)
