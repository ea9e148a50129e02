"""Full-firmware images through the same signed manifest and the ESP-IDF OTA partitions
(board.Partition over the NOR model, otadata states NEW -> PENDING_VERIFY -> VALID/ABORTED):
power cut at every flash operation of staging and confirmation, clean and torn, always boots
the old image or exactly the signed new one; an image that never confirms is rolled back."""

import os
import re

import pytest
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    wl,
    workload_dir,
)

from flashtool.release.keys import load_private
from flashtool.release.sign import body, sign_body


def _publish(extra, kd, size=40 * 1024 + 123):
    import hashlib

    img = os.urandom(size)
    (extra / "fw.bin").write_bytes(img)
    files = [["firmware.bin", size, hashlib.sha256(img).hexdigest()]]
    (extra / "fw.sm").write_bytes(sign_body(body("firmware", 3, files),
                                            load_private(kd / "app.pem")))


@pytest.mark.parametrize("torn", [0, 1, 2])
def test_firmware_image_cut_at_every_operation(ota_reader, tmp_path, keys, torn):  # noqa: F811
    extra = workload_dir(tmp_path, None, keys)
    _publish(extra, keys)
    assert wl(ota_reader, extra, "provision")[0] == 0
    code, lines = wl(ota_reader, extra, "fwcut", timeout=600, torn=torn)
    assert code == 0, "\n".join(lines[-20:])
    assert not [ln for ln in lines if ln.startswith("FAIL")], "\n".join(lines[:20])
    summary = [ln for ln in lines if ln.startswith("CUTS")][0]
    m = re.match(r"CUTS (\d+) OPS", summary)
    assert int(m.group(1)) >= 20, summary
    # cuts before set_boot boot the old image; after it, the new one (pending or confirmed)
    assert "('old'," in summary and "('new" in summary, summary
    assert "ROLLBACK ('new', True) ('old', False)" in lines, lines
