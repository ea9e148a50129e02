"""Power cut at flash operations of an app update (staging into the slot, the switch, the first
boot's pending and confirm writes), clean and torn: after every cut the reader boots an app
whose files are exactly its signed release (old or new, never a mix), and the recovery ends
with the new release confirmed. Runs in one MicroPython process per variant (the vfs partition
is restored from a snapshot between cut points)."""

import re

import pytest
from test_ota_kit import (  # noqa: F401  (fixtures)
    keys,
    ota_reader,
    publish_app,
    tagged_app,
    wl,
    workload_dir,
)

CLEAN, TORN_PREFIX, TORN_BITS = 0, 1, 2


def _campaign(reader, tmp_path, kd, step, torn, from_release):
    pub = tmp_path / "pub"
    extra = workload_dir(tmp_path, pub, kd)
    assert wl(reader, extra, "provision")[0] == 0
    if from_release:  # v2 installed and confirmed: the update replaces a slot app
        publish_app(pub, 2, kd / "app.pem", tmp_path / "b2", tagged_app("v2"))
        assert wl(reader, extra, "install")[0] == 0
        reader.boot()
        reader.wait_for(lambda ln: " ota valid version=2" in ln)
        reader.stop()
    publish_app(pub, 3, kd / "app.pem", tmp_path / "b3", tagged_app("v3"))
    code, lines = wl(reader, extra, "cutloop", timeout=900, step=step, torn=torn)
    summary = [ln for ln in lines if ln.startswith("CUTS")]
    assert code == 0 and summary, "\n".join(lines[-20:])
    fails = [ln for ln in lines if ln.startswith("FAIL")]
    assert not fails, "\n".join(fails[:10])
    m = re.match(r"CUTS (\d+) OPS (\d+) FAILS 0 STATES (.*)", summary[0])
    cuts, states = int(m.group(1)), m.group(2)
    print(summary[0])
    return cuts, states, summary[0]


@pytest.mark.parametrize("torn,step", [(CLEAN, 11), (TORN_PREFIX, 29), (TORN_BITS, 29)])
def test_cut_short(ota_reader, tmp_path, keys, torn, step):  # noqa: F811
    """make test: a sample of the operations, from a confirmed slot app to the next release."""
    cuts, _, summary = _campaign(ota_reader, tmp_path, keys, step, torn, True)
    assert cuts >= 20, summary
    if torn == CLEAN:  # both sides of the switch were seen: v2 before it, v3 after it
        assert "'v2'" in summary and "'v3" in summary, summary


@pytest.mark.long
@pytest.mark.parametrize("torn", [CLEAN, TORN_PREFIX, TORN_BITS])
@pytest.mark.parametrize("from_release", [False, True])
def test_cut_every_operation(ota_reader, tmp_path, keys, torn, from_release):  # noqa: F811
    cuts, _, summary = _campaign(ota_reader, tmp_path, keys, 1, torn, from_release)
    assert cuts >= 100, summary
