metadata(
    description="Signed flash-resident blocklist: keyed fingerprint pages with categories, deltas",
    version="0.1.0",
)
require("rsapkcs1")
package("blocklist")
