"""`flash.py blocklist keygen|build|delta|inspect|check` end to end on files, as an operator
runs it; the image it writes is what ListStore installs (test_blocklist_store.py)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tool(*args):
    r = subprocess.run([sys.executable, str(ROOT / "flash.py"), "blocklist", *map(str, args)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_keygen_build_inspect_check_delta(tmp_path):
    keys = tmp_path / "keys"
    assert tool("keygen", "--dir", keys)[0] == 0
    assert (keys / "blocklist.pem").stat().st_mode & 0o077 == 0  # private key not world-readable
    other = tmp_path / "other"
    tool("keygen", "--dir", other)
    csv = tmp_path / "list.csv"
    csv.write_text("# namespace,identifier,category\n"
                   "card,3104000012345678,lost_stolen\n"
                   "mifare,88776655,unpaid\n"
                   "account,ACC-1,health_hold\n"
                   "account,ACC-2,5\n")
    img = tmp_path / "l7.img"
    code, out = tool("build", csv, "--out", img, "--seq", 7, "--key", keys / "blocklist.pem")
    assert code == 0 and "4 entries" in out, out
    code, out = tool("inspect", img, "--pub", keys / "blocklist.pub.json")
    assert code == 0 and "full list seq 7" in out and "signature OK" in out, out
    assert "health_hold" in out and "stale->manual health" in out
    code, out = tool("inspect", img, "--pub", other / "blocklist.pub.json")
    assert code == 1 and "NOT VERIFIED" in out and "another list key" in out, out
    assert "listed in 1 lost_stolen" in tool("check", img, "card", "3104000012345678")[1]
    # the tool draws a fresh hash key, as it must for real lists: a non-member of this
    # one-page, 4-entry list is listed by chance with probability below 4.1e-10 per run (the
    # image's design rate, blocklist.design_fp: 3.5e-10 + 5.8e-11); members are exact whatever
    # the key
    assert "not listed" in tool("check", img, "mifare", "3104000012345678")[1]  # namespace
    assert "listed in 4 health_hold" in tool("check", img, "account", "ACC-1")[1]
    changes = tmp_path / "d.csv"
    changes.write_text("remove,card,3104000012345678,lost_stolen\nadd,card,999,unpaid\n")
    delta = tmp_path / "d8.img"
    code, out = tool("delta", img, changes, "--out", delta, "--seq", 8, "--key",
                     keys / "blocklist.pem")
    assert code == 0 and "delta seq 8 on list 7" in out, out
    code, out = tool("inspect", delta, "--pub", keys / "blocklist.pub.json")
    assert code == 0 and "delta list seq 8 (base 7)" in out and "2 records" in out, out
    assert "not listed" in tool("check", img, "card", "3104000012345678", "--delta", delta)[1]
    assert "listed in 2 unpaid" in tool("check", img, "card", "999", "--delta", delta)[1]
    # a corrupted image is called out
    bad = bytearray(img.read_bytes())
    bad[700] ^= 1
    (tmp_path / "bad.img").write_bytes(bad)
    code, out = tool("inspect", tmp_path / "bad.img", "--pub", keys / "blocklist.pub.json")
    assert code == 1 and "digest mismatch" in out, out


def test_quick_benchmark_prints_the_issue_figures():
    """`bench blocklist --quick` (100,000 entries, 1 M non-members, the fixed bench key):
    every member found in its own category, every category's design FP within its budget,
    for one category and for the demo mix; the reader finds its sampled members. The list
    key is fixed, so the verdict is the same on every run; the full and seed-scale figures
    are in the README."""
    r = subprocess.run([sys.executable, str(ROOT / "flash.py"), "bench", "blocklist", "--quick"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert out.count("missing 0, reported in another category 0") == 2, out
    assert out.count("design FP within every category's budget: yes") == 2, out
    assert out.count("deny-category members: 200/200 listed") == 2, out


def test_segmented_build_compact_inspect_check(tmp_path):
    """The one-image store's artefacts: a segmented image with room to grow (--room), its
    compaction with a day's changes (same key, pages and segments), both verified segment by
    segment by inspect; a segment altered after signing is called out."""
    keys = tmp_path / "keys"
    tool("keygen", "--dir", keys)
    key = keys / "blocklist.pem"
    csv = tmp_path / "list.csv"
    csv.write_text("card,3104000012345678,lost_stolen\nmifare,88776655,unpaid\n"
                   "account,ACC-1,health_hold\naccount,ACC-2,5\n")
    img = tmp_path / "s7.img"
    # one page holds the 4 entries; 1500 % more makes the 16 pages of two 4 KiB segments
    code, out = tool("build", csv, "--out", img, "--seq", 7, "--key", key, "--segment-kib", 4,
                     "--room", 1500)
    assert code == 0 and "4 entries" in out and "2 segments of 4 KiB" in out, out
    code, out = tool("inspect", img, "--pub", keys / "blocklist.pub.json")
    assert code == 0 and "segmented full list seq 7" in out and "signature OK" in out, out
    assert "2 segments of 4 KiB" in out and "16 fingerprint pages" in out, out
    changes = tmp_path / "d.csv"
    changes.write_text("remove,card,3104000012345678,lost_stolen\nadd,card,999,unpaid\n")
    comp = tmp_path / "c8.img"
    code, out = tool("compact", img, csv, changes, "--out", comp, "--seq", 8, "--key", key)
    assert code == 0 and "c8.img: 4 entries" in out and "2 segments of 4 KiB" in out, out
    code, out = tool("inspect", comp, "--pub", keys / "blocklist.pub.json")
    assert code == 0 and "segmented full list seq 8" in out and "16 fingerprint pages" in out
    assert "listed in 2 unpaid" in tool("check", comp, "card", "999")[1]
    assert "listed in 4 health_hold" in tool("check", comp, "account", "ACC-1")[1]
    # the card the changes removed is a ghost of the compaction (blocklist.compact): the new
    # pages answer it "not listed" exactly, whatever the fresh hash key
    assert "not listed" in tool("check", comp, "card", "3104000012345678")[1]
    bad = bytearray(comp.read_bytes())
    bad[-100] ^= 1  # in the last segment, after the signature
    (tmp_path / "bad.img").write_bytes(bad)
    code, out = tool("inspect", tmp_path / "bad.img", "--pub", keys / "blocklist.pub.json")
    assert code == 1 and "segment 1 digest mismatch" in out, out
