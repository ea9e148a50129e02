"""Board tables shared by the build and the simulators: partitions.csv and pins.csv."""

TYPES = {"app": 0, "data": 1}
SUBTYPES = {
    "app": {"factory": 0x00, "test": 0x20, **{"ota_%d" % i: 0x10 + i for i in range(16)}},
    "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04,
             "efuse": 0x05, "undefined": 0x06, "esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82,
             "littlefs": 0x83},
}


def _num(s):
    s = s.strip().lower()
    if s.endswith("k"):
        return int(s[:-1], 0) * 1024
    if s.endswith("m"):
        return int(s[:-1], 0) * 1024 * 1024
    return int(s, 0)


def partitions(path):
    """[(label, type, subtype, offset, size)] in table order."""
    rows = []
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        cells = [c.strip() for c in line.split(",")]
        label, typ, sub, off, size = cells[:5]
        t = TYPES[typ] if typ in TYPES else _num(typ)
        st = SUBTYPES.get(typ, {}).get(sub)
        if st is None:
            st = _num(sub)
        rows.append((label, t, st, _num(off), _num(size)))
    return rows


def pins(path):
    """{name: id} from a NAME,ID (or NAME,GPIOn) CSV."""
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, pin = (c.strip() for c in line.split(",")[:2])
        out[name] = int(pin[4:]) if pin.upper().startswith("GPIO") else int(pin, 0)
    return out
