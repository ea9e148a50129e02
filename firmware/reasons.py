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
# the e-purse purchase (firmware/ticketing.py)
LOW_BALANCE = const(28)
NOT_GENUINE = const(29)  # the PSAM refused the card's MAC2
MAC1_REFUSED = const(30)  # the card refused the PSAM's MAC1 (other keys, or altered on the way)
NO_PURSE = const(31)  # the card does not know the purchase (right number, no keys)
COUNTER_BACK = const(32)  # the card's offline counter went backwards
PURSE_FORMAT = const(33)  # the card answered the purchase with garbage
TORN = const(34)  # the card left during the debit: the next tap finishes it
ENTRY_OPEN = const(35)  # entry: the last journey has no exit
EXIT_DONE = const(36)  # exit: this card already exited here moments ago
PENALTY = const(37)  # exit without an entry record: penalty fare charged
NO_FARES = const(38)  # no valid fare table
SAM_FAULT = const(39)  # the PSAM is missing or not answering
TORN_LOG_WAIT = const(40)  # after an update: the torn log's sectors still hold unsent records

VERDICT_NAMES = ("-", "PASS", "DENY", "MANUAL", "EVENT")

# Indexed by reason code. One string per language rather than a tuple of tuples: on the
# host every string of a loaded module lives in the heap, and these are read only when a
# verdict is logged or displayed.
_NAMES = (
    "OK EMERGENCY CLOSED MULTI_CARD CARD_FAULT CARD_TYPE EXPIRED "
    "NOT_YET_VALID CONCESSION_EXPIRED BLACKLISTED LIST_MANUAL "
    "HEALTH_ABNORMAL NO_HEALTH_INFO PASSBACK CODE_INVALID CODE_FORGED "
    "CODE_UNKNOWN_KEY CODE_REVOKED CODE_EXPIRED CODE_NOT_YET_VALID "
    "CODE_STALE CODE_REPLAYED NO_TIME LIST_STALE NO_LIST JOURNAL_FULL "
    "MODE_CHANGE READER_FAULT LOW_BALANCE NOT_GENUINE MAC1_REFUSED NO_PURSE "
    "COUNTER_BACK PURSE_FORMAT TORN ENTRY_OPEN EXIT_DONE PENALTY NO_FARES SAM_FAULT "
    "TORN_LOG_WAIT"
)
_ZH = (
    "请通行|紧急放行|暂停服务|张数过多|读卡失败，请重刷|"
    "此卡不能使用|卡已过期|卡未启用|优惠资格已过期|黑名单卡|"
    "请到人工通道|健康码异常|未查询到健康码信息|重复刷卡|二维码无效|"
    "二维码验证失败|二维码无法验证|二维码已停用|二维码已过期|"
    "二维码未生效|二维码已失效，请刷新|二维码已使用|"
    "时间未同步，请人工核验|名单过期，请人工核验|"
    "未加载名单，请人工核验|记录已满，暂停服务|模式变更|"
    "设备故障，请人工核验|余额不足，请充值|无效卡|卡片认证失败|"
    "非本系统卡|卡片异常，请到人工|读卡失败，请重刷|"
    "交易未完成，请重新刷卡|上次未出站，请到人工|已出站，请到人工|"
    "无进站记录，已扣罚金|票价表未加载，请人工核验|"
    "PSAM故障，请人工核验|设备升级中，请人工核验"
)
_EN = (
    "Please pass|Emergency release - gate open|Out of service|"
    "More than one card|Card read error - tap again|Card type not accepted|"
    "Card expired|Card not yet valid|Concession expired|Card blocked|"
    "Please see staff|Health code abnormal|"
    "No health information - manual check|Already used - passback|"
    "Invalid ride code|Ride code not genuine|Ride code key unknown|"
    "Ride code revoked|Ride code expired|Ride code not yet valid|"
    "Ride code out of date - refresh|Ride code already used|"
    "No trusted time - manual check|List out of date - manual check|"
    "No list loaded - manual check|Journal full - out of service|"
    "Lane mode changed|Reader fault - manual check|Insufficient balance - top up|"
    "Card not genuine|Card refused the reader - see staff|"
    "No e-purse - card not accepted|Card counter error - see staff|"
    "Card answer not valid - tap again|Purchase not finished - tap again|"
    "No exit recorded - see staff|Already exited here - see staff|"
    "No entry recorded - penalty fare charged|No fare table - manual check|"
    "PSAM fault - manual check|Reader updating - manual check"
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
    ("NON_CANONICAL", CODE_FORGED),  # RC2: a malleated or mis-encoded rider signature
    ("BAD_KEY", CODE_FORGED),  # RC2: a certified rider key that is not a curve point
    ("RETIRED", CODE_INVALID),  # RC1 after the migration switch is off
    ("KEY_OFF", CODE_INVALID),  # RC2: a rider-key algorithm this reader does not accept
)


def _field(text, sep, i):
    start = 0
    while i > 0:
        start = text.find(sep, start) + 1
        if start == 0:
            return None
        i -= 1
    end = text.find(sep, start)
    return text[start:] if end < 0 else text[start:end]


def name(reason):
    n = _field(_NAMES, " ", reason) if reason >= 0 else None
    return n if n else "R%d" % reason


def text(reason):
    """(zh, en) display message of a reason."""
    return _field(_ZH, "|", reason) or "", _field(_EN, "|", reason) or ""


def code_table(results):
    """{cred.error value: reason} from an object with the ride-code result constants (the
    ridecode module): the numbers are theirs, the mapping is ours."""
    table = {}
    for rname, reason in CODE_RESULTS:
        value = getattr(results, rname, None)
        if value is not None:
            table[value] = reason
    return table
