metadata(description="Base45 (RFC 9285): binary in QR alphanumeric mode, allocation-free decode",
         version="0.1.0")
module("base45.py")
