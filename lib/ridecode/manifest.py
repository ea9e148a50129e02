metadata(description="Signed QR ride codes: format, signed key set, offline verifier",
         version="0.1.0")
require("base45")
require("rsapkcs1")
require("civildate")
require("p256")
package("ridecode")
