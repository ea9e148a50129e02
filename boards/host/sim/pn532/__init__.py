"""A byte-accurate PN532 (C106, firmware 1.6) behind HSU, I2C or SPI framing, with virtual
cards in its field and fault injection.

The chip is modelled as the UM0701 describes it and as libnfc/nfcpy/ESPHome traces show it:
it starts asleep in LowVbat (woken by its host interface: on HSU a 0x55 and a pause, or a long
preamble; SAMConfiguration brings it to normal mode), sleeps again on PowerDown until one of
the enabled sources wakes it, ACKs every valid command before answering, answers the commands
it does not take with the syntax-error frame, aborts a command on a host ACK or on a new
command, re-sends its last response on a NACK, changes its HSU rate on SetSerialBaudRate once
the host ACKs the answer, keeps a pending response across an MCU reset (the next boot reads it
as a stale frame), and is reset by RSTPD_N (`NFC_RESET`). With the default
MxRtyPassiveActivation 0xFF an InListPassiveTarget waits for a card forever, as the real chip
does (it answers when one comes), so a driver must configure finite retries.

Time: HSU bytes cross the wire at each end's rate (`UartDevice`: garbage when they differ);
the chip adds its own processing and wake-up time, and card commands their RF/card time
(`Card.activate`, `Card.exchange`). The I2C/SPI bus time is not in the reader's clock;
`bus_bytes` counts it for the benchmark.

`install(hw, transport)` wires one chip into a `Hardware` and returns it; `sim.field` presents
and removes cards; `sim.faults` injects faults; `sim.trace` (when `record` is set) keeps every
byte both ways for tests.

Modules: `chip` (reset, frame parser, ACK/NACK and abort rules, rate change), `power`
(LowVbat, PowerDown, wake-up per host interface), `commands` (what each command does, which
are not simulated), `field` (cards in the field, fault counters), `frames`, `timing`, `ports`
(HSU/I2C/SPI and `install`).
"""

from sim.pn532.chip import PN532Sim
from sim.pn532.field import Faults, Field
from sim.pn532.frames import ACK, ERROR_FRAME, NACK, frame
from sim.pn532.ports import HsuPort, I2cPort, SpiPort, install

__all__ = ["ACK", "ERROR_FRAME", "NACK", "Faults", "Field", "HsuPort", "I2cPort", "PN532Sim",
           "SpiPort", "frame", "install"]
