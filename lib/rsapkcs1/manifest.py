metadata(description="RSA PKCS#1 v1.5 SHA-256 signature verification (strict)", version="0.1.0")
module("rsapkcs1.py")
