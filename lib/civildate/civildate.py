"""Civil date YYYYMMDD from days since 1970-01-01, integers only.

Ports disagree on time.gmtime's epoch (2000 on some MicroPython builds, 1970 on others), and
card and certificate dates are compared as YYYYMMDD: this is H. Hinnant's days-to-civil
algorithm, the same on every interpreter. Not micropython-lib's datetime: importing it takes
15 KB of an ESP32's 112 KB heap (docs/device-figures.md).
"""


def ymd(days):
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y * 10000 + m * 100 + d
