metadata(
    description="Signed flash-resident blocklist: page-blocked Bloom filters per category, deltas",
    version="0.1.0",
)
require("rsapkcs1")
package("blocklist")
