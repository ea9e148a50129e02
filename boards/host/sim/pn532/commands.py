"""What the chip does with each command of the UM0701 command set (§7): the mixin behind
`PN532Sim._execute`, which returns (chip time in µs, response data) or None while a command
is still running (waiting for a card, or a test mode that only a new command ends).

Simulated (`HANDLERS`): Diagnose (communication line, ROM and RAM tests), GetFirmwareVersion,
GetGeneralStatus, Read/WriteRegister, ReadGPIO, WriteGPIO, SetSerialBaudRate, SetParameters,
SAMConfiguration, PowerDown, RFConfiguration, RFRegulationTest, InListPassiveTarget (106 kbps
type A cards; the other modulations find nothing), InDataExchange, InCommunicateThru,
InDeselect, InRelease, InSelect, InAutoPoll. Answered with the syntax-error frame, as the chip
answers a command it does not take (`NOT_SIMULATED`): the SAM command for a TDA8029, the
NFC-DEP initiator commands (no peer-to-peer device is ever in the field) and the target-mode
commands (a gate reader is never a card). So is any other code, a command with the wrong
number of parameters or values out of range, and, in LowVbat (before SAMConfiguration), every
command but Diagnose, GetFirmwareVersion and SAMConfiguration.
"""

from sim.pn532.timing import CMD_US, NO_CARD_US

LOWVBAT_OK = (0x00, 0x02, 0x14)
RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
NOT_SIMULATED = {
    0x18: "AlparCommandForTDA", 0x46: "InJumpForPSL", 0x4E: "InPSL", 0x50: "InATR",
    0x56: "InJumpForDEP", 0x86: "TgGetData", 0x88: "TgGetInitiatorCommand",
    0x8A: "TgGetTargetStatus", 0x8C: "TgInitAsTarget", 0x8E: "TgSetData",
    0x90: "TgResponseToInitiator", 0x92: "TgSetGeneralBytes", 0x94: "TgSetMetaData",
}
RF_ITEMS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
I0I1 = {"hsu": 0x00, "i2c": 0x01, "spi": 0x02}  # host interface selection pins
AUTOPOLL_106A = (0x00, 0x10, 0x20)  # generic 106 kbps, MIFARE, ISO/IEC 14443-4 type A


def timing_us(code):
    """RFConfiguration timing code n -> 100 µs x 2^(n-1); 0 = no timeout."""
    return 0 if code == 0 else 100 * (1 << (code - 1))


class Commands:
    def _execute(self, t, cmd, p):
        if self.mode != "normal" and cmd not in LOWVBAT_OK:
            return CMD_US, None
        h = HANDLERS.get(cmd)
        return (CMD_US, None) if h is None else h(self, t, p)

    # -- miscellaneous --
    def _diagnose(self, t, p):
        if p[0] == 0x00:
            return CMD_US, p  # communication line test: NumTst and the data echoed
        if p[0] in (0x01, 0x02) and len(p) == 1:
            return CMD_US * 10, b"\x00"  # ROM / RAM self-test: passed
        return CMD_US, None

    def _firmware(self, t, p):
        return CMD_US, b"\x32\x01\x06\x07"

    def _general_status(self, t, p):
        out = bytearray([self.last_err, 0x00, len(self.targets)])  # no external field
        for tg in sorted(self.targets):
            out += bytes([tg, 0x00, 0x00, 0x00])  # 106 kbps both ways, type A
        return CMD_US, bytes(out + b"\x00")  # SAM status

    def _read_register(self, t, p):
        if not p or len(p) % 2:
            return CMD_US, None
        return CMD_US, bytes(self.regs.get(p[i] << 8 | p[i + 1], 0) for i in range(0, len(p), 2))

    def _write_register(self, t, p):
        if not p or len(p) % 3:
            return CMD_US, None
        for i in range(0, len(p), 3):
            self.regs[p[i] << 8 | p[i + 1]] = p[i + 2]
        return CMD_US, b""

    def _read_gpio(self, t, p):
        return CMD_US, bytes([self.p3, self.p7, I0I1[self.transport]])

    def _write_gpio(self, t, p):
        if len(p) != 2:
            return CMD_US, None
        if p[0] & 0x80:  # validation bit: change P3
            self.p3 = p[0] & 0x3F
        if p[1] & 0x80:
            self.p7 = p[1] & 0x06
        return CMD_US, b""

    def _serial_baud(self, t, p):
        if len(p) != 1 or p[0] >= len(RATES):
            return CMD_US, None
        self.baud_next = RATES[p[0]]  # taken once the host ACKs this answer (chip._host_ack)
        return CMD_US, b""

    def _set_parameters(self, t, p):
        if len(p) != 1:
            return CMD_US, None
        self.flags = p[0]
        return CMD_US, b""

    def _sam(self, t, p):
        if not 1 <= len(p) <= 3 or not 1 <= p[0] <= 4:
            return CMD_US, None
        self.mode = "normal"
        return CMD_US, b""

    def _power_down(self, t, p):
        if not 1 <= len(p) <= 2:
            return CMD_US, None
        return CMD_US, b"\x00"  # asleep once this answer has gone (power.Power)

    # -- RF --
    def _rf_config(self, t, p):
        if RF_ITEMS.get(p[0]) != len(p) - 1:
            return CMD_US, None
        if p[0] == 0x01:
            self.rf_on = bool(p[1] & 1)
            if not self.rf_on:  # every card in the field loses power
                for c in self.field.cards(t):
                    c.left_field()
                self.targets = {}
        elif p[0] == 0x02:
            self.atr_timeout_us = timing_us(p[2])
            self.retry_timeout_us = timing_us(p[3])
        elif p[0] == 0x05:
            self.retries = p[3]
        return CMD_US, b""

    def _rf_test(self, t, p):
        if len(p) != 1:
            return CMD_US, None
        return None  # transmits until the next command; never answers

    def _silent_us(self):
        """A card that does not answer costs fRetryTimeout (or, set to 0, a long wait)."""
        return self.retry_timeout_us or 3_280_000

    # -- initiator --
    def _candidates(self, t):
        """Cards that answer a poll now; polling switches the field back on (after an
        RFConfiguration field-off, as nfcpy's mute() relies on)."""
        self.rf_on = True
        return [c for c in self.field.cards(t) if not c.halted]

    def _target_data(self, tg, c):
        out = bytes([tg]) + c.sens_res + bytes([c.sel_res, len(c.uid)]) + c.uid
        return out + (c.ats if c.ats and self.flags & 0x10 else b"")

    def _activate(self, c):
        rf = c.activate()
        c.iso4 = bool(c.ats and self.flags & 0x10)  # automatic RATS opened ISO-DEP
        return rf

    def _list(self, t, p):
        max_tg, brty = p[0], p[1]
        if max_tg not in (1, 2) or brty > 4:
            return CMD_US, None
        self.targets = {}
        self.current = 0
        cards = self._candidates(t) if brty == 0 else []
        if len(p) > 2:  # InitiatorData: the UID of one card (cascade tags 0x88 included)
            uid = bytes(p[2:])
            if len(uid) in (8, 12) and uid[0] == 0x88:
                uid = uid[1:4] + (uid[5:] if len(uid) == 12 else uid[4:])
            cards = [c for c in cards if c.uid == uid]
        if not cards:
            if self.retries == 0xFF:
                return None  # waits for a card forever (until aborted)
            return CMD_US + NO_CARD_US * (self.retries + 1), b"\x00"
        out = bytearray([min(len(cards), max_tg)])
        rf = 0
        for i, c in enumerate(cards[:max_tg]):
            rf += self._activate(c)
            self.targets[i + 1] = c
            out += self._target_data(i + 1, c)
        self.current = 1
        return CMD_US + rf, bytes(out)

    def _autopoll(self, t, p):
        n, period, types = p[0], p[1], p[2:]
        if not (1 <= n and 1 <= period <= 0x0F and 1 <= len(types) <= 15):
            return CMD_US, None
        self.targets = {}
        self.current = 0
        found = []
        for c in self._candidates(t):
            for ty in types:
                if ty == 0x00 or (ty == 0x10 and not c.ats) or (ty == 0x20 and c.ats):
                    found.append((ty, c))
                    break
        if not found:
            if n == 0xFF:
                return None  # polls until a card comes
            return CMD_US + n * len(types) * period * 150_000, b"\x00"
        out = bytearray([min(len(found), 2)])
        rf = 0
        for i, (ty, c) in enumerate(found[:2]):
            rf += self._activate(c)
            self.targets[i + 1] = c
            d = self._target_data(i + 1, c)
            out += bytes([ty, len(d)]) + d
        self.current = 1
        return CMD_US + rf, bytes(out)

    def _exchange(self, t, p):
        tg, mi = p[0] & 0x3F, p[0] & 0x40
        card = self.targets.get(tg)
        if card is None:
            return CMD_US, b"\x27"
        if card.halted or not self.field.has(card, t):
            return self._silent_us(), b"\x01"
        self.current = tg
        data = p[1:]
        if card.ats and not card.iso4:  # no ISO-DEP session: the bytes go to the card as is
            return self._raw(t, card, data)
        if not data and self.chain_out:
            chunk, self.chain_out = self.chain_out[:self.chunk], self.chain_out[self.chunk:]
            return CMD_US + len(chunk) * 85, (b"\x40" if self.chain_out else b"\x00") + chunk
        if mi:
            self.chain_in += data
            return CMD_US + 1000 + len(data) * 85, b"\x00"
        data = bytes(self.chain_in) + data
        self.chain_in = bytearray()
        if card.gone_after is not None and card.exchanges >= card.gone_after:
            self.field.remove(card, t)
            return self._silent_us(), b"\x01"
        card.exchanges += 1
        status, ans, rf = card.exchange(data)
        if status:
            return CMD_US + rf, bytes([status])
        if len(ans) > self.chunk:
            self.chain_out = ans[self.chunk:]
            return CMD_US + rf, b"\x40" + ans[:self.chunk]
        return CMD_US + rf, b"\x00" + ans

    def _communicate_thru(self, t, p):
        if not p:
            return CMD_US, None
        card = self.targets.get(self.current)
        if card is None or card.halted or not self.field.has(card, t):
            return self._silent_us(), b"\x01"
        return self._raw(t, card, p)

    def _raw(self, t, card, data):
        """A frame to the card without the chip's protocol handling (CRC still added and
        checked by the chip)."""
        ans = card.raw(bytes(data))
        if ans is None:
            return self._silent_us(), b"\x01"
        rsp, rf = ans
        return CMD_US + rf, b"\x00" + rsp

    def _deselect_release(self, t, p, release):
        if len(p) != 1:
            return CMD_US, None
        tg = p[0]
        if tg and tg not in self.targets:
            return CMD_US, b"\x27"
        for k, c in list(self.targets.items()):
            if tg in (0, k):
                c.halt()
                c.iso4 = False
                if release:
                    del self.targets[k]
        return CMD_US, b"\x00"

    def _deselect(self, t, p):
        return self._deselect_release(t, p, False)

    def _release(self, t, p):
        return self._deselect_release(t, p, True)

    def _select(self, t, p):
        if len(p) != 1:
            return CMD_US, None
        card = self.targets.get(p[0])
        if card is None:
            return CMD_US, b"\x27"
        if not self.field.has(card, t):
            return self._silent_us(), b"\x01"
        self.current = p[0]
        return CMD_US + self._activate(card), b"\x00"  # WUPA wakes it from HALT


HANDLERS = {
    0x00: Commands._diagnose, 0x02: Commands._firmware, 0x04: Commands._general_status,
    0x06: Commands._read_register, 0x08: Commands._write_register, 0x0C: Commands._read_gpio,
    0x0E: Commands._write_gpio, 0x10: Commands._serial_baud, 0x12: Commands._set_parameters,
    0x14: Commands._sam, 0x16: Commands._power_down, 0x32: Commands._rf_config,
    0x58: Commands._rf_test, 0x40: Commands._exchange, 0x42: Commands._communicate_thru,
    0x44: Commands._deselect, 0x4A: Commands._list, 0x52: Commands._release,
    0x54: Commands._select, 0x60: Commands._autopoll,
}
