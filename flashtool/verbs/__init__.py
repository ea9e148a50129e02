"""The flash.py command line: one module per verb, each with `register(subparsers)`. VERBS is
the one place a verb is registered; the work itself lives in the job packages."""

VERBS = ("build", "deploy", "keygen", "sign", "bundle", "blocklist", "codes", "serve",
         "emulate", "pn532_pty", "bench", "settle", "micropython")
