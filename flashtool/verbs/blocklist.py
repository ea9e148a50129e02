"""`flash.py blocklist keygen|build|delta|compact|inspect|check`: build, sign, inspect and check
blocklist images (the format: docs/blocklist.md; the builder: flashtool/lists/blocklist.py)."""

import time
from pathlib import Path

from flashtool.lists.blocklist import (
    DEFAULT_MAX_AGE,
    KEY_DIR,
    build_delta,
    build_image,
    compact,
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


def _with_progress(what, make):
    """make(progress) under a progress bar per stage; a refusal is the command's error."""
    from rich.progress import Progress

    try:
        with Progress() as bar:
            tasks = {}

            def progress(stage, done, total):
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                bar.update(tasks[stage], completed=done)

            return make(progress)
    except ValueError as e:
        raise SystemExit("blocklist %s: %s" % (what, e)) from None


def _built(args, img, n, t0):
    Path(args.out).write_bytes(img)
    h = fmt.Header(img, len(img))
    seg = ", %d segments of %d KiB" % (h.nseg, h.seg_bytes // 1024) \
        if h.kind == fmt.KIND_SEG else ""
    print("%s: %d entries, %d bytes (%.2f bits/entry)%s, seq %d, %.1f s"
          % (args.out, n, len(img), len(img) * 8 / max(1, n), seg, args.seq, time.time() - t0))


def cmd_build(args):
    t0 = time.time()
    entries = read_entries(args.csv)
    priv = load_private(args.key or KEY_DIR / "blocklist.pem")
    img = _with_progress("build", lambda progress: build_image(
        entries, priv, args.seq, max_age_s=args.max_age, fp=args.fp, progress=progress,
        segment=args.segment_kib * 1024 if args.segment_kib else None, room=args.room / 100))
    _built(args, img, len(entries), t0)


def cmd_compact(args):
    t0 = time.time()
    base = Path(args.base).read_bytes()
    members = read_entries(args.list)
    changes = read_changes(args.csv)
    priv = load_private(args.key or KEY_DIR / "blocklist.pem")
    img = _with_progress("compact", lambda progress: compact(
        base, members, changes, priv, args.seq, progress=progress))
    _built(args, img, sum(c[4] for c in fmt.Header(img, len(img)).cats), t0)


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
    kind = {fmt.KIND_FULL: "full", fmt.KIND_SEG: "segmented full",
            fmt.KIND_DELTA: "delta"}[h.kind]
    print("%s list seq %d%s, %d bytes, issued %s UTC, max age %d s, key id %s" % (
        kind, h.seq, " (base %d)" % h.base_seq if h.kind == fmt.KIND_DELTA else "", len(img),
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(h.issued)), h.max_age_s,
        h.key_id.hex()))
    acts = {v: k for k, v in fmt.ACTIONS.items()}
    for cid, act, stale, flags, n, name, group, den in h.cats:
        print("  %d %-15s %-6s stale->%-6s%s%s %9d entries, group %d, budget %.0e" % (
            cid, name, acts[act], acts[stale], " health" if flags & fmt.FLAG_HEALTH else "",
            " pass-set" if flags & fmt.FLAG_PASS_SET else "", n, group, 1 / den))
    if h.kind == fmt.KIND_SEG:
        print("  %d segments of %d KiB (the one-image store installs them one by one)"
              % (h.nseg, h.seg_bytes // 1024))
    if h.kind in (fmt.KIND_FULL, fmt.KIND_SEG):
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
    b.add_argument("--segment-kib", type=int, default=0,
                   help="a segmented image for the one-image store of a 32 MiB board "
                   "(esp32s3_gate32: 128); default: a full image for two list slots")
    b.add_argument("--room", type=float, default=0.0, metavar="PCT",
                   help="pages beyond the fewest, in %%: room for the list to grow while its "
                   "compactions keep the page count")
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
    m = s.add_parser("compact", help="the compaction of a list and its changes: a new full "
                     "image a one-image store rolls in while the old list keeps deciding")
    m.add_argument("base")
    m.add_argument("list", help="the base list's CSV")
    m.add_argument("csv", help="its changes (as for delta), cumulative")
    m.add_argument("--out", required=True)
    m.add_argument("--seq", type=int, required=True)
    m.add_argument("--key")
    m.set_defaults(func=cmd_compact)
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
