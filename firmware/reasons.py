"""Verdicts, reason codes and the rider-facing message per reason (Chinese, English).

Reason codes are small stable integers: they go into every journal record and to the back
office, so a number is never reused for another meaning. Wording follows Beijing practice
(transit-domain.md §5.7): "健康码异常", "未查询到健康码信息", "张数过多".
"""

from micropython import const

# Verdicts (EVENT: a journal record that is not a tap, e.g. a lane-mode change).
PASS = const(1)
DENY = const(2)
MANUAL = const(3)
EVENT = const(4)

OK = const(0)
EMERGENCY = const(1)
CLOSED = const(2)
MULTI_CARD = const(3)
CARD_FAULT = const(4)
CARD_TYPE = const(5)
EXPIRED = const(6)
NOT_YET_VALID = const(7)
CONCESSION_EXPIRED = const(8)
BLACKLISTED = const(9)
LIST_MANUAL = const(10)
HEALTH_ABNORMAL = const(11)
NO_HEALTH_INFO = const(12)
PASSBACK = const(13)
CODE_INVALID = const(14)
CODE_FORGED = const(15)
CODE_UNKNOWN_KEY = const(16)
CODE_REVOKED = const(17)
CODE_EXPIRED = const(18)
CODE_NOT_YET_VALID = const(19)
CODE_STALE = const(20)
CODE_REPLAYED = const(21)
NO_TIME = const(22)
LIST_STALE = const(23)
NO_LIST = const(24)
JOURNAL_FULL = const(25)
MODE_CHANGE = const(26)
READER_FAULT = const(27)

VERDICT_NAMES = ("-", "PASS", "DENY", "MANUAL", "EVENT")

# index = reason code: (name, zh, en)
MESSAGES = (
    ("OK", "请通行", "Please pass"),
    ("EMERGENCY", "紧急放行", "Emergency release - gate open"),
    ("CLOSED", "暂停服务", "Out of service"),
    ("MULTI_CARD", "张数过多", "More than one card"),
    ("CARD_FAULT", "读卡失败，请重刷", "Card read error - tap again"),
    ("CARD_TYPE", "此卡不能使用", "Card type not accepted"),
    ("EXPIRED", "卡已过期", "Card expired"),
    ("NOT_YET_VALID", "卡未启用", "Card not yet valid"),
    ("CONCESSION_EXPIRED", "优惠资格已过期", "Concession expired"),
    ("BLACKLISTED", "黑名单卡", "Card blocked"),
    ("LIST_MANUAL", "请到人工通道", "Please see staff"),
    ("HEALTH_ABNORMAL", "健康码异常", "Health code abnormal"),
    ("NO_HEALTH_INFO", "未查询到健康码信息", "No health information - manual check"),
    ("PASSBACK", "重复刷卡", "Already used - passback"),
    ("CODE_INVALID", "二维码无效", "Invalid ride code"),
    ("CODE_FORGED", "二维码验证失败", "Ride code not genuine"),
    ("CODE_UNKNOWN_KEY", "二维码无法验证", "Ride code key unknown"),
    ("CODE_REVOKED", "二维码已停用", "Ride code revoked"),
    ("CODE_EXPIRED", "二维码已过期", "Ride code expired"),
    ("CODE_NOT_YET_VALID", "二维码未生效", "Ride code not yet valid"),
    ("CODE_STALE", "二维码已失效，请刷新", "Ride code out of date - refresh"),
    ("CODE_REPLAYED", "二维码已使用", "Ride code already used"),
    ("NO_TIME", "时间未同步，请人工核验", "No trusted time - manual check"),
    ("LIST_STALE", "名单过期，请人工核验", "List out of date - manual check"),
    ("NO_LIST", "未加载名单，请人工核验", "No list loaded - manual check"),
    ("JOURNAL_FULL", "记录已满，暂停服务", "Journal full - out of service"),
    ("MODE_CHANGE", "模式变更", "Lane mode changed"),
    ("READER_FAULT", "设备故障，请人工核验", "Reader fault - manual check"),
)

# Ride-code refusals (lib/ridecode result names) and the reason each maps to.
CODE_RESULTS = (
    ("MALFORMED", CODE_INVALID),
    ("FORGED", CODE_FORGED),
    ("UNKNOWN_KEY", CODE_UNKNOWN_KEY),
    ("REVOKED", CODE_REVOKED),
    ("EXPIRED", CODE_EXPIRED),
    ("NOT_YET_VALID", CODE_NOT_YET_VALID),
    ("STALE", CODE_STALE),
    ("REPLAYED", CODE_REPLAYED),
    ("NO_TRUSTED_TIME", NO_TIME),
)


def name(reason):
    return MESSAGES[reason][0] if 0 <= reason < len(MESSAGES) else "R%d" % reason


def code_table(results):
    """{cred.error value: reason} from an object with the ride-code result constants (the
    ridecode module): the numbers are theirs, the mapping is ours."""
    table = {}
    for rname, reason in CODE_RESULTS:
        value = getattr(results, rname, None)
        if value is not None:
            table[value] = reason
    return table
