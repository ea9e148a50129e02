"""The NOR-flash model (boards/host/nor.py) on MicroPython: erase granularity, bits only clear,
no program over unerased bytes, operation counting and power cut at operation N (clean, torn
prefix, torn bits)."""

import pytest

SETUP = """
import nor
path = %r
f = open(path, "wb")
f.write(b"\\xff" * (64 * 1024))
f.close()
fl = nor.NorFlash(path, 64 * 1024)
"""


@pytest.fixture
def img(tmp_path):
    return str(tmp_path / "nor.img")


def test_program_then_read_back(mp, img):
    out = mp(SETUP % img + """
fl.program(4096 + 10, b"hello")
b = bytearray(7)
fl.read(4096 + 9, b)
print(bytes(b), fl.ops, fl.programs, fl.erases)
""")
    assert "b'\\xffhello\\xff' 1 1 0" in out


def test_program_over_unerased_bytes_is_refused(mp, img):
    out = mp(SETUP % img + """
fl.program(100, b"\\xf0")
try:
    fl.program(100, b"\\x00")  # would only clear bits, but the byte is not erased
    print("accepted")
except nor.FlashError as e:
    print("refused", e.errno)
""")
    assert "refused 5" in out


def test_erase_is_per_sector_and_aligned(mp, img):
    out = mp(SETUP % img + """
fl.program(4095, b"\\x00\\x00")   # straddles sectors 0 and 1
fl.erase(4096)
b = bytearray(2)
fl.read(4095, b)
print(bytes(b))
try:
    fl.erase(100)
except nor.FlashError as e:
    print("misaligned", e.errno)
try:
    fl.read(64 * 1024 - 1, bytearray(2))
except nor.FlashError as e:
    print("range", e.errno)
""")
    assert "b'\\x00\\xff'" in out
    assert "misaligned 22" in out
    assert "range 22" in out


@pytest.mark.parametrize("torn,expect", [(0, "clean"), (1, "prefix"), (2, "bits")])
def test_power_cut_at_operation_n(mp, img, torn, expect):
    out = mp(SETUP % img + """
fl.cut_at = 3
fl.torn = %d
data = bytes(range(200))
fl.program(0, data)     # op 1
fl.erase(8192)          # op 2
try:
    fl.program(4096, data)  # op 3: cut
    print("not cut")
except nor.PowerCut:
    print("cut", fl.ops, fl.dead)
b = bytearray(200)
try:
    fl.read(0, b)
    print("dead chip answered")
except nor.PowerCut:
    print("dead stays dead")
fl.dead = False  # power back (a reboot)
fl.read(4096, b)
landed = sum(1 for i in range(200) if b[i] == data[i])
untouched = sum(1 for i in range(200) if b[i] == 0xFF)
print("landed", landed, "untouched", untouched)
""" % torn)
    assert "cut 3 True" in out
    assert "dead stays dead" in out
    landed = int(out.split("landed ")[1].split()[0])
    untouched = int(out.split("untouched ")[1].split()[0])
    if expect == "clean":
        assert untouched == 200  # the cut operation never happened
    elif expect == "prefix":
        assert 0 <= landed < 200  # only a prefix landed
    else:
        assert landed < 200 and untouched < 200  # some bits of many bytes landed


def test_torn_erase_leaves_a_partly_erased_sector(mp, img):
    out = mp(SETUP % img + """
fl.program(0, b"\\x00" * 4096)
fl.cut_at = 2
fl.torn = nor.TORN_PREFIX
try:
    fl.erase(0)
except nor.PowerCut:
    pass
fl.dead = False
b = bytearray(4096)
fl.read(0, b)
print("erased", sum(1 for x in b if x == 0xFF), "kept", sum(1 for x in b if x == 0))
""")
    erased = int(out.split("erased ")[1].split()[0])
    assert 0 <= erased < 4096


def test_reads_and_programs_do_not_allocate(mp, img):
    out = mp(SETUP % img + """
import micropython
buf = bytearray(512)
data = bytearray(b"\\x5a" * 512)
fl.erase(8192)
micropython.heap_lock()
try:
    fl.read(0, buf)
    fl.program(8192, data)
    ok = True
except MemoryError:
    ok = False
micropython.heap_unlock()
print("alloc-free", ok)
""")
    assert "alloc-free True" in out


def test_snapshot_restore_range(mp, img, tmp_path):
    snap = str(tmp_path / "snap.bin")
    out = mp(SETUP % img + """
fl.program(8192, b"old")
fl.copy_to(%r, 8192, 4096)
fl.erase(8192)
fl.program(8192, b"new")
fl.copy_from(%r, 8192, 4096)
b = bytearray(3)
fl.read(8192, b)
print(bytes(b), fl.ops)
""" % (snap, snap))
    assert "b'old' 0" in out
