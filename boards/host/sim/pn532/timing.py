"""How long the chip takes (µs of the reader's virtual clock); figures from UM0701 and from
libnfc/nfcpy traces of real C106 boards."""

# Asleep (LowVbat, PowerDown) -> listening, from the first edge on the host interface. Known
# only as a bracket at 115200 baud: 55 55 00 00 00 before a frame is too short on a real board
# (nfc-tools-devel "wakeup/init issue of pn532_uart": the start code arrives ~0.52 ms after the
# first edge), nfcpy's ten 00 bytes are enough (~0.95 ms); the middle of that bracket.
WAKE_US = 750
BOOT_US = 2000  # after RSTPD_N goes high
ACK_US = 200  # frame received -> ACK starts
BAUD_SWITCH_US = 200  # host ACK after SetSerialBaudRate -> chip at the new rate (nfcpy waits 1 ms)
CMD_US = 300  # chip processing of a simple command
NO_CARD_US = 1200  # one passive activation attempt that finds nothing
TIMEOUT_US = 51200  # fRetryTimeout default: a card that does not answer
