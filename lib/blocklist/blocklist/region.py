"""Layout of the one-image list region (segstore.SegStore), shared by the reader and the host
tools (board budgets, bench), so both compute the same capacities.

The region is one raw partition (`bl_seg`) of 4 KiB sectors, in order:
  map records      REC_SECTORS sectors, records appended (the newest valid generation wins)
  index areas      INDEXES x IDX_SECTORS: a segmented image's signed index (header, exact
                   records, segment digests, signature); the active image's, a rolling
                   install's, and one free for the next
  delta areas      two of delta_sectors() each (a new delta goes to the one not in use)
  segment slots    the rest, in slots of the image's segment size: its segments + one spare
"""

SECTOR = 4096
REC_SECTORS = 2
REC_LEN = 256  # one map record; 16 per sector
INDEXES = 3
IDX_SECTORS = 16  # 64 KiB: header, up to ~3,800 exact records, the digests of 200 segments


def delta_sectors(nsectors):
    """Sectors of each delta area: 1/64 of the region (384 KiB of a 24 MiB region)."""
    return max(4, nsectors // 64)


def index_at(i):
    return (REC_SECTORS + i * IDX_SECTORS) * SECTOR


def delta_at(nsectors, i):
    return (REC_SECTORS + INDEXES * IDX_SECTORS + i * delta_sectors(nsectors)) * SECTOR


def slots_at(nsectors):
    return delta_at(nsectors, 2)


def slots(nsectors, seg_bytes):
    """Segment slots of seg_bytes the region holds (an image needs its segments + 1)."""
    return (nsectors * SECTOR - slots_at(nsectors)) // seg_bytes
