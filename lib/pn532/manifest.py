metadata(description="PN532 NFC controller driver: HSU, I2C and SPI, allocation-free framing",
         version="0.1.0")
package("pn532")
