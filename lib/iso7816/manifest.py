metadata(description="ISO 7816-3 contact-card (SAM) driver on a UART: ATR, PPS, T=0",
         version="0.1.0")
package("iso7816")
