# The reader application and the lib packages it uses.
# Each area adds its lines in its own section (keeps parallel work out of each other's way).
metadata(description="Transit fare-gate / bus reader application", version="0.1.0")
# The project's lib/ packages, found by require() before micropython-lib's (no name is shared).
add_library("reader-lib", "../lib", prepend=True)

# -- foundation --
module("main.py")
module("app.py")
module("config.py")
module("slog.py")
module("credential.py")
require("rsapkcs1")
require("civildate")

# -- nfc (PN532) --
require("pn532")
require("aioready")
module("nfc_task.py")

# -- blocklist --
require("blocklist")

# -- ride codes / scan engine --
require("base45")
require("ridecode")
require("scanengine")
module("qr_task.py")

# -- decision, gate, journal --
module("reasons.py")
module("decision.py")
module("journal.py")
module("gate.py")

# -- ota, sync --
module("bootsel.py")
module("files.py")
module("ota.py")
module("appstage.py")
module("fwstage.py")
module("selftest.py")
module("sync.py")
require("signedmanifest")

# -- psam, e-purse purchase --
require("iso7816")
require("epurse")
module("fares.py")
module("ticketing.py")
module("tornlog.py")
