metadata(description="ECDSA P-256 signature verification in viper (native) code, allocation-light",
         version="0.1.0")
package("p256")
