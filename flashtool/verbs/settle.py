"""`flash.py settle --keys ISSUER.json [--db STORE] [--records R.bin ...] [--image F ...]`:
verify the TAC of every purchase the readers uploaded with the issuer's keys and print a
settlement summary (flashtool/fares/settle.py). Exit 1 when a TAC fails."""


def run(args):
    from pathlib import Path

    from flashtool.fares import settle
    from sim.pboc import IssuerKeys

    issuer = IssuerKeys.from_json(Path(args.keys).read_text())
    recs = settle.load(args.db, args.records or (), args.image or ())
    if not recs:
        raise SystemExit("settle: no records (give --db, --records or --image)")
    s = settle.settle(recs, issuer)
    print("\n".join(settle.report(s)))
    return 1 if s["tac_failures"] else 0


def register(sub):
    p = sub.add_parser("settle", help="verify purchase TACs with the issuer keys, summarise")
    p.add_argument("--keys", required=True, help="issuer master keys (JSON, the back office's)")
    p.add_argument("--db", help="the station server's store: its SQLite file or a PostgreSQL DSN")
    p.add_argument("--records", nargs="*", help="raw record files, one per reader")
    p.add_argument("--image", nargs="*", help="readers' flash images")
    p.set_defaults(func=run)
