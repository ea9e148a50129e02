metadata(description="Signed update manifests (TUF-style checks) shared by host tools and reader",
         version="0.1.0")
module("signedmanifest.py")
require("rsapkcs1")
