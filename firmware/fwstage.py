"""Staging a full-firmware image (MicroPython with frozen modules) into the next ESP-IDF OTA
partition, resumable after a power cut."""

import signedmanifest as sm
import slog
from ota import BUF, E_STALE, OtaError

log = slog.Logger("ota")


class FirmwareStager:
    """A full-firmware image (MicroPython with frozen modules) into the next ESP-IDF OTA
    partition: stream it in with the erase-then-program block protocol, read it back and check
    the signed SHA-256 from flash (what will boot, not what was received), then set_boot().
    The bootloader boots it PENDING_VERIFY; the self-test confirms it (confirm_after_self_test)
    or the next reset rolls back to the running image.

    An interrupted download resumes: progress() is a record naming the signed image, the
    partition and the bytes programmed (whole blocks); resume(record) on a new stager re-reads
    that prefix from the partition into the hash (never trusted) and continues from the next
    block boundary."""

    def __init__(self, m, partition_cls):
        if len(m.files) != 1:
            raise sm.ManifestError(sm.E_FORMAT, "a firmware manifest names one image")
        self.entry = m.files[0]
        self.m = m
        self.part = partition_cls(partition_cls.RUNNING).get_next_update()
        if self.entry[1] > self.part.info()[3]:
            raise sm.ManifestError(sm.E_LENGTH, "image over the %d-byte partition"
                                   % self.part.info()[3])
        self.buf = bytearray(BUF)
        self._fill = 0
        self._block = 0
        self._check = sm.FileCheck(self.entry)

    def write(self, buf, n):
        """Accumulate; each full 4 KiB block is erased and programmed."""
        self._check.update(buf, n)
        off = 0
        while off < n:
            k = min(n - off, BUF - self._fill)
            self.buf[self._fill:self._fill + k] = memoryview(buf)[off:off + k]
            self._fill += k
            off += k
            if self._fill == BUF:
                self._flush()

    def _flush(self):
        for i in range(self._fill, BUF):
            self.buf[i] = 0xFF
        self.part.writeblocks(self._block, self.buf)
        self._block += 1
        self._fill = 0

    def durable(self):
        """Bytes of the image programmed, in whole blocks, short of its end."""
        return min(self._block * BUF, (self.entry[1] - 1) // BUF * BUF)

    def progress(self):
        return {"sha": self.entry[2], "part": self.part.info()[4], "n": self.durable()}

    def resume(self, rec):
        """Generator, one step per block re-read: continue after rec["n"] bytes already in
        the partition. OtaError(E_STALE) when the record names another image or partition
        (the next update slot changed since) or an impossible length."""
        n = rec.get("n")
        if self._block or self._fill or rec.get("sha") != self.entry[2] \
                or rec.get("part") != self.part.info()[4] or not isinstance(n, int) \
                or n <= 0 or n % BUF or n >= self.entry[1]:
            raise OtaError(E_STALE, "firmware progress record does not fit")
        for block in range(n // BUF):
            self.part.readblocks(block, self.buf)
            self._check.update(self.buf, BUF)
            yield
        self._block = n // BUF  # the next block is erased again before it is programmed

    def finish(self):
        """Generator, one step per block read back (up to 2 MiB: the sync task yields to the
        lane between steps); the image becomes bootable only after the last."""
        if self._fill:
            self._flush()
        self._check.finish()
        readback = sm.FileCheck(self.entry)
        left = self.entry[1]
        block = 0
        while left:
            self.part.readblocks(block, self.buf)
            k = min(left, BUF)
            readback.update(self.buf, k)
            left -= k
            block += 1
            yield
        readback.finish()
        self.part.set_boot()
        log.info("firmware", "version=%d staged in %s", self.m.version, self.part.info()[4])
