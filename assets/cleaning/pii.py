"""Masking personal data in medical and education text before anyone reads it.

Annotators, operators and the public need the text, not who it is about: resident ID numbers,
mobile and landline numbers, e-mail addresses and person names become readable tokens
(`[身份证号]`, `[手机号]`, ...) so the kind of data stays visible while the value is gone. Nothing
else in the text changes.

People write the same number many ways (`139 1234 5678`, `+86-139…`, full-width `１３９…`,
`（0351）1234567`), so matching runs on the text with NFKC's one-character compatibility mappings
applied (full-width digits, letters and `＠` become ASCII); those keep every character in place,
so the span masked is the original one, full-width or not.

All patterns are one precompiled regex scanned once per text; the functions are module-level and
hold no state, so Dask can ship them to workers and run them on a partition at a time.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import date
from typing import NamedTuple

TOKENS = {
    "resident_id": "[身份证号]",
    "mobile": "[手机号]",
    "landline": "[座机]",
    "email": "[邮箱]",
    "name": "[姓名]",
}

# GB 11643-1999: weights of the first 17 digits, and the check character by weighted sum mod 11
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# GB/T 2260 province codes: the first two digits of every resident ID
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)

# Common single-character surnames. A marked name must start with one (or a compound surname): it
# keeps clinical phrases such as 患者自诉 or 医生建议 from being read as names.
_SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
    "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷"
    "钱汤尹黎易常武乔贺赖龚文庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍韦申尤毕聂焦向柳邢路岳"
    "齐梅莫庄辛管祝左涂谷祁舒耿詹关苗凌费纪靳盛童欧甄项曲游阳裴席卫查屈鲍覃霍翁隋甘景单包司柏宁"
    "柯阮桂闵"
)
COMPOUND_SURNAMES = (
    "欧阳 司马 诸葛 上官 东方 皇甫 慕容 令狐 夏侯 尉迟 公孙 长孙 宇文 司徒 司空 轩辕 端木 独孤 南宫 "
    "西门 呼延 万俟 澹台 公冶 太史 申屠 闻人 钟离 百里 东郭 赫连 拓跋 淳于 濮阳 宗政 左丘 第五"
).split()
# words that mark the name right after them (the marker stays), longest first
NAME_MARKERS = sorted(
    "患者 病人 患儿 姓名 医生 医师 联系人 家长 家属 教师 主讲 监护人 就诊人 "
    "受检者 陪同人 班主任 申请人 委托人 收件人 记录人 报告人 负责人 名叫".split(),
    key=len,
    reverse=True,
)
# words that mark a name only with a colon after them: without one they begin ordinary phrases
# (老师高一数学课, 学生回答)
NAME_MARKERS_WITH_COLON = sorted(
    "老师 学生 主任 护士 签名 母亲 父亲 丈夫 妻子 儿子 女儿 亲属 同学 本人".split(), key=len, reverse=True
)
# titles that mark the name right before them
NAME_TITLES = "老师 医生 医师 护士 同学 主任 大夫 先生 女士 家长 教授".split()
_HAN = "\u4e00-\u9fff"
# characters that follow a name but are (almost) never part of a given name: a name stops there
_NOT_GIVEN = (
    "的了是在和与及或等说称诉述讲问答男女岁性先医护患病"
    "今昨前后入出于因被把将向对从自到已未不无也都就还又再且并"
)
_TITLE = "|".join(NAME_TITLES)
_GIVEN = f"(?:(?!{_TITLE})(?![{_NOT_GIVEN}])[{_HAN}])"
_NAME = (
    f"(?:(?=[{''.join({surname[0] for surname in COMPOUND_SURNAMES})}])(?:{'|'.join(COMPOUND_SURNAMES)})"
    f"|[{_SURNAMES}]){_GIVEN}{{1,2}}"
)
# Words a marker is often followed by that start with a surname character: 患者查体 is an
# examination, not 查体 the patient. A candidate starting with one is not a name.
NOT_NAMES = frozenset(
    "查体 左侧 左下 左上 左手 左眼 左腿 余无 余未 余同 陈旧 张力 张口 高热 高烧 高血 高度 高龄 "
    "常规 常有 曾于 曾有 曾经 曾在 曾因 曾行 凌晨 苏醒 安静 安全 温度 范围 程度 任何 马上 关节 "
    "申请 尤其 易感 易疲 卫生 舒适 费用 路上 康复 白细 毛发 戴眼 周身 周围 严重 单位 包括 方面 "
    "方便 方可 文化 齐全 黄疸 黄色 黄痰 顾虑 平时 于今 于昨 于前 于近 于当 于入 于本 于上 于下 "
    "于次 于半 于外 于门 于急 于发 于我 于某 于夜 于晨 于术 何时 何种 何处 田间 江边 段时 万一 "
    "石膏 金属 秦皇 龙头 明显 史无 孔径 甘草 雷同 钱款 汤药 易于 常见 宁可 单独 安监 安排 高一 "
    "高二 高三 高中 高考 高年 高级 高分 高温 高压 高危 管床 管理 管道 景区 阳性 司机 施工 牛奶 "
    "鲁莽 葛根 席位 查房 查看 查血 查见 屈曲 包扎 柯氏 和蔼 庄重 谢谢 华丽 向左 向右 向外 向内 "
    "梅毒 莫名 贺卡 侯诊 毕业 韦氏 祝福 左右 杜绝 章节 项目 游戏 武器 方法 文章 文字 林区 乔木 "
    "甄别 邢台 欧洲 季节 季度 计划 程序 许多 许可 孟氏 夏季 冯氏 史料 傅氏 曹氏".split()
)

# Full-width forms and other one-character NFKC compatibility mappings (１→1, ＠→@, Ａ→A): applied
# for matching only, and character for character, so spans found on the mapped text are spans of
# the original. (Multi-character expansions such as ⑴→(1) are left alone: none spells a number.)
_ASTRAL_FORMS = ((0x1D400, 0x1D7FF), (0x1F100, 0x1F1FF), (0x1FBF0, 0x1FBF9))  # math, enclosed, segmented
_NFKC_ONE = {
    point: mapped
    for first, last in ((0, 0xFFFF), *_ASTRAL_FORMS)
    for point in range(first, last + 1)
    if unicodedata.category(char := chr(point)) not in ("Cs", "Cn")
    and len(mapped := unicodedata.normalize("NFKC", char)) == 1
    and mapped != char
}


def _ranges(points: list[int]) -> str:
    """A regex character class body for code points, as runs `a-b` (a long list of single characters
    makes `re` search slowly)."""
    runs, start, previous = [], None, None
    for point in sorted(points):
        if start is None:
            start = previous = point
        elif point == previous + 1:
            previous = point
        else:
            runs.append((start, previous))
            start = previous = point
    if start is not None:
        runs.append((start, previous))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in runs
    )


# The characters whose mapping can change what matches: those that become digits, letters or the
# symbols of a number or an address; a text without any is matched as it is (the common case).
# Beyond the first 65,536 code points, whole blocks: a class of many scattered astral ranges makes
# `re` test them one by one, ten times slower on every text.
_MATTERS = re.compile(
    "["
    + _ranges(
        [
            point
            for point, mapped in _NFKC_ONE.items()
            if point <= 0xFFFF and mapped.isascii() and (mapped.isalnum() or mapped in "@+-._%() ")
        ]
    )
    + "".join(f"{chr(first)}-{chr(last)}" for first, last in _ASTRAL_FORMS)
    + "]"
)
_NFKC_TABLE = str.maketrans(_NFKC_ONE)

# one start per run of letters and digits, and no backtracking (*+): linear even on long runs
_EMAIL = r"(?<![A-Za-z0-9])(?P<email>[A-Za-z0-9][A-Za-z0-9._%+-]*+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})"
# 6-digit area, birth date YYYYMMDD, 3-digit sequence, check character; written whole or 6-8-4
_RESIDENT_ID = (
    r"(?P<resident_id>[1-9][0-9]{5} ?(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]) ?"
    r"[0-9]{3}[0-9Xx])(?![0-9Xx])"
)
# the first-generation 15-digit ID: 6-digit area, birth date YYMMDD, 3-digit sequence, no check
_RESIDENT_ID_15 = (
    r"(?P<resident_id_15>[1-9][0-9]{5}[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3})(?![0-9])"
)
# 3-4-4 digits, together or with spaces or dashes; a country code written +86, 0086, 86 or (+86)
_MOBILE = r"(?P<mobile>(?:(?:\+|00)?86[ -]?|\(\+?86\) ?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2})(?![0-9])"
# an area code (010, 0351) with a dash, a space or brackets, then a local number not starting 0/1,
# and an extension after a dash
_LANDLINE = (
    r"(?P<landline>(?:0[1-9][0-9]{1,2}[- ]?|\(0[1-9][0-9]{1,2}\) ?)[2-9][0-9]{6,7}(?:-[0-9]{1,5})?)"
    r"(?![0-9])"
)
# a local number without area code, where a phone word says what it is
_LOCAL_PHONE = r"(?:电话|座机|固话|办公室)[:：]? ?(?P<local_phone>[2-9][0-9]{6,7})(?![0-9])"
_MARKERS = "|".join(NAME_MARKERS)
# names after the words that mark them (the marker stays), or right before a title; a name right
# before a title may follow a verb or a preposition (请王伟同学回答) but not other characters
_NAME_AFTER = (
    rf"(?:(?:{_MARKERS})(?:姓名)?[:：]?|(?:{'|'.join(NAME_MARKERS_WITH_COLON)})(?:姓名)?[:：]) ?"
    rf"(?P<name_after>{_NAME})"
)
_NAME_BEFORE = (
    rf"(?:(?<![{_HAN}])|(?<=[请让叫和与跟找问给由向对是被把及、]))(?P<name_before>{_NAME})(?=(?:{_TITLE}))"
)
# Every branch starts with one of these characters. Checking that first lets the scan skip most
# positions of a Chinese text at the cost of one set lookup: three times faster than trying each
# branch everywhere.
_MARKER_FIRSTS = "".join(
    sorted({marker[0] for marker in NAME_MARKERS + NAME_MARKERS_WITH_COLON} | set("电座固办"))
)
_COMPOUND_FIRSTS = "".join(sorted({surname[0] for surname in COMPOUND_SURNAMES}))
_FIRST_CHARS = f"A-Za-z0-9+({_MARKER_FIRSTS}{_SURNAMES}{_COMPOUND_FIRSTS}"
_PATTERN = re.compile(
    rf"(?=[{_FIRST_CHARS}])(?:{_EMAIL}"
    # numbers that are not part of a longer digit run
    rf"|(?=[0-9+(])(?<![0-9])(?:{_RESIDENT_ID}|{_MOBILE}|{_RESIDENT_ID_15}|{_LANDLINE})"
    rf"|(?=[{_MARKER_FIRSTS}])(?:{_LOCAL_PHONE}|{_NAME_AFTER})"
    rf"|(?=[{_SURNAMES}{_COMPOUND_FIRSTS}]){_NAME_BEFORE})"
)
_KINDS = {
    "email": "email",
    "resident_id": "resident_id",
    "resident_id_15": "resident_id",
    "mobile": "mobile",
    "landline": "landline",
    "local_phone": "landline",
    "name_after": "name",
    "name_before": "name",
}


class Finding(NamedTuple):
    """A masked span of the original text: [start, end) in characters."""

    kind: str  # resident_id, mobile, landline, email, name
    start: int
    end: int


class MaskResult(NamedTuple):
    text: str
    found: list[Finding]


def resident_id_check_char(first17: str) -> str:
    """The check character (ISO 7064 MOD 11-2) of a resident ID's first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(value: str) -> bool:
    """18 characters, a real calendar birth date and a matching check character: a well-typed ID."""
    return is_resident_id_shaped(value) and resident_id_check_char(value[:17]) == value[17].upper()


def is_resident_id_shaped(value: str) -> bool:
    """A province code and a real birth date in an 18- or 15-character ID (spaces ignored).

    The check character is not required: an ID with a typo in it still names its holder."""
    value = value.replace(" ", "")
    if value[:2] not in _PROVINCES or not value[:17].isascii():
        return False
    birth = value[6:14] if len(value) == 18 else "19" + value[6:12]
    try:
        date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
    except ValueError:
        return False
    return True


def _span(match: re.Match) -> tuple[str, int, int] | None:
    """The kind and span to mask for a regex match, or None for what only looked like one."""
    group = match.lastgroup
    start, end = match.span(group)
    value = match.string[start:end]
    if group in ("resident_id", "resident_id_15") and not is_resident_id_shaped(value):
        return None
    if group in ("name_after", "name_before") and value[:2] in NOT_NAMES:
        return None
    if group in _NUMBERS and _inside_hex(match.string, start, end):
        return None
    return _KINDS[group], start, end


_NUMBERS = ("resident_id", "resident_id_15", "mobile", "landline", "local_phone")
_HEX = frozenset("0123456789abcdefABCDEF")
_HEX_RUN = 16  # shorter runs of hex characters are words and numbers, not hashes or keys


def _inside_hex(text: str, start: int, end: int) -> bool:
    """Digits that touch a letter of a long run of hex characters are part of a hash or a key
    (sha256s are quoted in details and logs), not a number someone wrote."""
    before, after = start, end
    while before > 0 and text[before - 1] in _HEX:
        before -= 1
    while after < len(text) and text[after] in _HEX:
        after += 1
    return after - before >= _HEX_RUN and (before < start or after > end)


def _replacement(match: re.Match) -> str:
    span = _span(match)
    if span is None:
        return match.group()
    kind, start, end = span
    whole_start, whole_end = match.span()
    text = match.string
    return text[whole_start:start] + TOKENS[kind] + text[end:whole_end]


def _findings(text: str, segmenter: bool = False) -> list[Finding]:
    matched = text.translate(_NFKC_TABLE) if _MATTERS.search(text) else text
    found = [Finding(*span) for match in _PATTERN.finditer(matched) if (span := _span(match))]
    if segmenter:
        taken = {i for finding in found for i in range(finding.start, finding.end)}
        names = [name for name in segmented_names(matched) if taken.isdisjoint(range(name.start, name.end))]
        found = sorted(found + names, key=lambda finding: finding.start)
    return found


_NAME_TAGS = ("nr", "nrfg", "nrt")


def segmented_names(text: str) -> list[Finding]:
    """Person names no word marks (王伟今天来复诊): words jieba tags as names (`nr`: its offline
    dictionary and HMM) that start with a surname, as patterns require of marked names.

    About 140 times the cost of the patterns (benchmarks/RESULTS.md, workload `pii`), hence opt-in:
    `[cleaning] name_segmenter`."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)  # not the dictionary-loading chatter on every worker
    found, position = [], 0
    for word, tag in jieba.posseg.cut(text):
        start, position = position, position + len(word)
        if (
            tag in _NAME_TAGS
            and 2 <= len(word) <= 4
            and (word[0] in _SURNAMES or word[:2] in COMPOUND_SURNAMES)
            and word[:2] not in NOT_NAMES
        ):
            found.append(Finding("name", start, position))
    return found


def _masked(text: str, found: list[Finding]) -> str:
    parts = []
    position = 0
    for finding in found:
        parts += (text[position : finding.start], TOKENS[finding.kind])
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


def mask_pii(text: str, segmenter: bool = False) -> MaskResult:
    """The masked text and what was masked, with spans in the original text (for audit counts);
    with `segmenter`, names no word marks too (`segmented_names`)."""
    found = _findings(text, segmenter)
    return MaskResult(_masked(text, found), found) if found else MaskResult(text, [])


def mask_text(text: str | None, segmenter: bool = False) -> str | None:
    """The masked text alone (None stays None): for what people read besides uploads."""
    return text if not text else mask_texts([text], segmenter)[0]


def mask_texts(texts: list[str], segmenter: bool = False) -> list[str]:
    """The masked texts of a batch, in order: the hot path, without building findings."""
    if segmenter:
        return [mask_pii(text, segmenter=True).text for text in texts]
    sub, matters = _PATTERN.sub, _MATTERS.search
    return [_masked(text, _findings(text)) if matters(text) else sub(_replacement, text) for text in texts]
