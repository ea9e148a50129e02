"""What the chip does with each command it understands (UM0701 §7): the mixin behind
`PN532Sim._execute`. A command it does not know, or one refused in its mode, gets the
syntax-error frame, as the real chip answers."""

from sim.pn532.timing import CMD_US, NO_CARD_US, TIMEOUT_US


class Commands:
    def _execute(self, t, cmd, p):
        if self.mode != "normal" and cmd not in (0x00, 0x02, 0x14):
            return CMD_US, None
        if cmd == 0x02:
            return CMD_US, b"\x32\x01\x06\x07"
        if cmd == 0x14:
            if not 1 <= p[0] <= 4:
                return CMD_US, None
            self.mode = "normal"
            return CMD_US, b""
        if cmd == 0x00:
            if p[0] != 0x00:
                return CMD_US, None
            return CMD_US, p  # communication line test: echo
        if cmd == 0x04:
            return CMD_US, bytes([0, 1, len(self.targets)]) + b"\x01"
        if cmd == 0x06:
            if len(p) % 2:
                return CMD_US, None
            return CMD_US, bytes(self.regs.get(p[i] << 8 | p[i + 1], 0)
                                 for i in range(0, len(p), 2))
        if cmd == 0x08:
            if len(p) % 3:
                return CMD_US, None
            for i in range(0, len(p), 3):
                self.regs[p[i] << 8 | p[i + 1]] = p[i + 2]
            return CMD_US, b""
        if cmd == 0x12:
            return (CMD_US, b"") if p else (CMD_US, None)
        if cmd == 0x32:
            if p[0] == 0x05:
                self.retries = p[3]
            elif p[0] == 0x01:
                self.rf_on = bool(p[1] & 1)
                if not self.rf_on:  # every card in the field loses power
                    for c in self.field.cards(t):
                        c.left_field()
                    self.targets = {}
            elif p[0] not in (0x01, 0x02, 0x04, 0x0A, 0x0B, 0x0C, 0x0D):
                return CMD_US, None
            return CMD_US, b""
        if cmd == 0x4A:
            return self._list(t, p)
        if cmd == 0x40:
            return self._exchange(t, p)
        if cmd == 0x42:
            return TIMEOUT_US, b"\x01"
        if cmd in (0x44, 0x52):
            tg = p[0]
            for k, c in list(self.targets.items()):
                if tg in (0, k):
                    c.halt()
                    if cmd == 0x52:
                        del self.targets[k]
            return CMD_US, b"\x00"
        if cmd == 0x16:
            return (CMD_US, b"\x00") if p else (CMD_US, None)
        return CMD_US, None

    def _list(self, t, p):
        max_tg, brty = p[0], p[1]
        if max_tg not in (1, 2) or brty > 4:
            return CMD_US, None
        self.targets = {}
        cards = [c for c in self.field.cards(t) if not c.halted] if brty == 0 else []
        if not self.rf_on:
            cards = []
        if not cards:
            if self.retries == 0xFF:
                return None  # waits for a card forever (until aborted)
            return CMD_US + NO_CARD_US * (self.retries + 1), b"\x00"
        out = bytearray([min(len(cards), max_tg)])
        rf = 0
        for i, c in enumerate(cards[:max_tg]):
            rf += c.activate()
            self.targets[i + 1] = c
            out += bytes([i + 1]) + c.sens_res + bytes([c.sel_res, len(c.uid)]) + c.uid
            if c.ats:
                out += c.ats
        return CMD_US + rf, bytes(out)

    def _exchange(self, t, p):
        tg, mi = p[0] & 0x3F, p[0] & 0x40
        card = self.targets.get(tg)
        if card is None:
            return CMD_US, b"\x27"
        if card.halted or not self.field.has(card, t):
            return TIMEOUT_US, b"\x01"
        data = p[1:]
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
            return TIMEOUT_US, b"\x01"
        card.exchanges += 1
        status, ans, rf = card.exchange(data)
        if status:
            return CMD_US + rf, bytes([status])
        if len(ans) > self.chunk:
            self.chain_out = ans[self.chunk:]
            return CMD_US + rf, b"\x40" + ans[:self.chunk]
        return CMD_US + rf, b"\x00" + ans
