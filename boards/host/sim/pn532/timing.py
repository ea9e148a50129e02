"""How long the chip takes (µs of the reader's virtual clock); figures from UM0701 and from
libnfc/nfcpy traces of real C106 boards."""

WAKE_US = 1000  # HSU: after 0x55 the chip needs this long before it listens
BOOT_US = 2000  # after RSTPD_N goes high
ACK_US = 200  # frame received -> ACK starts
CMD_US = 300  # chip processing of a simple command
NO_CARD_US = 1200  # one passive activation attempt that finds nothing
TIMEOUT_US = 51200  # fRetryTimeout default: a card that does not answer
