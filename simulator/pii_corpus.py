"""Personal data written the ways people type it (outside world): a labelled corpus for masking.

Each case is a short medical or school note holding personal data in one written form (`139 1234
5678`, `+86-139…`, full-width `１３９…`, `（0351）1234567`, a 15-digit or lower-case-x resident ID,
`王伟＠qq.com`, 欧阳晓东 after 家属, …) and the exact span of each value, or a negative: numbers and
words that look like personal data and must stay (dates, doses, order numbers, 患者查体 …).
`unmarked_name` cases hold a name no word marks (王伟今天来复诊); they are kept apart, since
finding those needs a word segmenter rather than patterns.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NamedTuple

from simulator.text_corpus import invalid_resident_id, valid_resident_id

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "东方",
    "皇甫",
    "慕容",
    "令狐",
    "夏侯",
    "公孙",
    "端木",
    "南宫",
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛超秀霞平刚桂英华玉兰萍建国红梅志鹏晓东海燕文斌宇浩然欣怡子涵"
_PINYIN = ("wang", "li", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun", "gao")
_DOMAINS = ("163.com", "qq.com", "126.com", "sina.com", "xiehe-clinic.cn", "dtedu.cn", "mail.sx.gov.cn")
_AREA_CODES = ("010", "020", "021", "0351", "0352", "0349", "0355", "0311")
_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)} | {" ": "\u3000"})


class Span(NamedTuple):
    kind: str  # name, resident_id, mobile, landline, email
    start: int
    end: int


class PIICase(NamedTuple):
    """A text, the form it tests, the spans of personal data in it and the strings that must stay."""

    form: str
    text: str
    pii: list[Span]
    keep: list[str]


def full_width(text: str) -> str:
    return text.translate(_FULL_WIDTH)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + _digits(rng, 9)


def _local(rng: random.Random, area: str) -> str:
    return rng.choice("23456789") + _digits(rng, 7 if len(area) == 3 else rng.choice((6, 7)))


def _name(rng: random.Random, compound: bool = False) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if compound else rng.choice(_SURNAMES)
    return surname + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _email(rng: random.Random) -> str:
    local = (
        rng.choice(_PINYIN)
        + rng.choice(("", ".", "_"))
        + rng.choice(_PINYIN)
        + _digits(rng, rng.randint(0, 4))
    )
    return local + "@" + rng.choice(_DOMAINS)


def _id18(rng: random.Random) -> str:
    return valid_resident_id(rng)


def _id15(rng: random.Random) -> str:
    eighteen = valid_resident_id(rng)
    while not eighteen[6:8] == "19":
        eighteen = valid_resident_id(rng)
    return eighteen[:6] + eighteen[8:17]  # the old number: year without century, no check character


def _id_lower_x(rng: random.Random) -> str:
    value = valid_resident_id(rng)
    while value[-1] != "X":
        value = valid_resident_id(rng)
    return value[:17] + "x"


# form -> (kind, value maker)
_FORMS: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "mobile": ("mobile", _mobile),
    "mobile_spaces": ("mobile", lambda r: (m := _mobile(r))[:3] + " " + m[3:7] + " " + m[7:]),
    "mobile_dashes": ("mobile", lambda r: (m := _mobile(r))[:3] + "-" + m[3:7] + "-" + m[7:]),
    "mobile_plus86": (
        "mobile",
        lambda r: r.choice(("+86 ", "+86-", "+86", "(+86)", "0086 ", "86-")) + _mobile(r),
    ),
    "mobile_full_width": ("mobile", lambda r: full_width(_mobile(r))),
    "landline_dash": ("landline", lambda r: (a := r.choice(_AREA_CODES)) + "-" + _local(r, a)),
    "landline_brackets": (
        "landline",
        lambda r: r.choice(("({}){}", "（{}）{}", "({}) {}")).format(
            a := r.choice(_AREA_CODES), _local(r, a)
        ),
    ),
    "landline_space": ("landline", lambda r: (a := r.choice(_AREA_CODES)) + " " + _local(r, a)),
    "landline_extension": (
        "landline",
        lambda r: (a := r.choice(_AREA_CODES)) + "-" + _local(r, a) + "-" + _digits(r, 3),
    ),
    "landline_full_width": (
        "landline",
        lambda r: full_width((a := r.choice(_AREA_CODES)) + "-" + _local(r, a)),
    ),
    "resident_id": ("resident_id", _id18),
    "resident_id_lower_x": ("resident_id", _id_lower_x),
    "resident_id_15": ("resident_id", _id15),
    "resident_id_bad_check": ("resident_id", invalid_resident_id),
    "resident_id_spaced": ("resident_id", lambda r: (v := _id18(r))[:6] + " " + v[6:14] + " " + v[14:]),
    "resident_id_full_width": ("resident_id", lambda r: full_width(_id18(r))),
    "email": ("email", _email),
    "email_full_width_at": ("email", lambda r: _email(r).replace("@", "＠")),
    "email_full_width": ("email", lambda r: full_width(_email(r))),
}

# where each kind of value is written, `{}` the value; what follows it varies (punctuation, words)
_CONTEXTS = {
    "mobile": (
        "联系电话：{}，",
        "家属电话{}。",
        "请拨打{}联系家属",
        "手机 {} 随访",
        "电话{}（白天）",
        "家长手机：{}；",
    ),
    "landline": ("座机：{}，", "科室电话{}。", "家属电话：{}转护士站", "学校办公室电话 {}；", "联系电话{}，"),
    "resident_id": (
        "身份证号：{}，",
        "身份证{}。",
        "证件号码 {} 已核对",
        "患者身份证号码：{}；",
        "学生身份证{}，",
    ),
    "email": ("邮箱：{}，", "发至{}。", "结果已发送到{}，请查收", "E-mail: {} ", "课后答疑邮箱{}；"),
}

_NAME_FORMS = {
    # markers that need nothing after them
    "name_after_marker": (
        "患者{}",
        "病人{}",
        "患儿{}",
        "家属{}",
        "家长{}",
        "联系人{}",
        "紧急联系人{}",
        "监护人{}",
        "就诊人{}",
    ),
    "name_after_marker_colon": (
        "姓名：{}",
        "患者姓名：{}",
        "主治医生：{}",
        "授课教师：{}",
        "记录人：{}",
        "老师：{}",
        "学生：{}",
        "签名：{}",
        "母亲：{}",
        "班主任{}",
    ),
    "name_before_title": ("{}老师", "请{}同学", "{}医生", "{}护士", "{}主任", "和{}大夫"),
}
_AFTER_NAME = ("，", "。", "，男，45岁", "，女", " ", "（", "；", "：", "、")
_AFTER_TITLE = ("，", "回答这道题", "讲解", "查房", "。", "说")

# names in running text, with no word marking them: the segmenter's part
_UNMARKED = (
    "{}今天来复诊，",
    "{}回答正确。",
    "请{}明天带化验单来",
    "{}和同学讨论",
    "昨天{}没来上课，",
    "{}血压平稳，",
)

# texts with numbers and words that look like personal data and are not; each part must stay
_NEGATIVES = (
    "血压{sbp}/{dbp}mmHg，心率{hr}次/分",
    "空腹血糖{glu}mmol/L，复查日期2026-{mm}-{dd}",
    "住院号{d7}，床号{bed}",
    "门诊号{d10}，检查单号{d12}",
    "订单号{order18}已付款",
    "条码{bar11}，批号{d8}",
    "时间{hh}:{mi}，体温{temp}℃",
    "阿莫西林0.25g，每日3次，{weeks}周后复查",
    "肾上腺素1:1000稀释",
    "血小板{plt}×10^9/L，白细胞{wbc}×10^9/L",
    "患者查体：神清，精神可",
    "患者左侧肢体无力{hours}小时",
    "患者高热{hours}天，伴寒战",
    "患者于今晨{hh}时入院",
    "患者曾于{year}年行阑尾切除术",
    "病人余无特殊不适",
    "家属同意手术，已签字",
    "家长会定于周五召开",
    "学生回答：分母不同不能直接相加",
    "老师高一数学课片段",
    "患者自诉头痛，医生建议复查",
    "联系人电话见病历首页",
    "家长高度重视孩子的视力",
    "患者常规体检，各项指标正常",
    "患者凌晨出现胸闷",
    "病人苏醒后安静入睡",
    "医生查房后调整用药",
    "同学们，翻到课本第{page}页",
    "勾股定理a^2+b^2=c^2，{a}加{b}等于多少？",
    "山西省大同市平城区{d3}号",
    "版本v{v1}.{v2}.{v3}，见附件",
    "@所有人 明天{hh}点开会",
    "云冈石窟第{cave}窟编号{d6}",
    "高血压病史{years}年，张力正常",
    "王牌课程第{page}讲",
    "邮编{zip}，传真号码见官网",
    "共{count}人参加体检，合格率{pct}%",
    "血氧饱和度{spo2}%，吸氧{lpm}L/min",
    "金额{money}元，发票号{d8}",
    "孙子兵法第{page}篇",
)


def _fill_negative(template: str, rng: random.Random) -> str:
    fields = {
        "sbp": rng.randint(100, 200),
        "dbp": rng.randint(60, 120),
        "hr": rng.randint(50, 130),
        "glu": f"{rng.uniform(3.5, 12):.1f}",
        "mm": f"{rng.randint(1, 12):02d}",
        "dd": f"{rng.randint(1, 28):02d}",
        "d7": "00" + _digits(rng, 5),
        "bed": rng.randint(1, 60),
        "d10": "2026" + _digits(rng, 6),
        "d12": "2026" + _digits(rng, 8),
        "order18": "2026" + _digits(rng, 14),
        "bar11": "10" + _digits(rng, 9),
        "d8": _digits(rng, 8),
        "hh": f"{rng.randint(0, 23):02d}",
        "mi": f"{rng.randint(0, 59):02d}",
        "temp": f"{rng.uniform(36, 40):.1f}",
        "weeks": rng.randint(1, 4),
        "plt": rng.randint(80, 400),
        "wbc": f"{rng.uniform(3, 15):.1f}",
        "hours": rng.randint(1, 48),
        "year": rng.randint(1990, 2025),
        "page": rng.randint(3, 180),
        "a": rng.randint(2, 99),
        "b": rng.randint(2, 99),
        "d3": _digits(rng, 3),
        "v1": rng.randint(0, 9),
        "v2": rng.randint(0, 20),
        "v3": rng.randint(0, 99),
        "cave": rng.randint(1, 45),
        "d6": _digits(rng, 6),
        "years": rng.randint(1, 30),
        "zip": "0370" + _digits(rng, 2),
        "count": rng.randint(10, 9999),
        "pct": rng.randint(50, 100),
        "spo2": rng.randint(85, 100),
        "lpm": rng.randint(1, 5),
        "money": f"{rng.uniform(10, 99999):.2f}",
    }
    return template.format(**fields)


def _case(form: str, kind: str, context: str, value: str, after: str = "") -> PIICase:
    start = context.index("{}")
    text = context.replace("{}", value, 1) + after
    return PIICase(form, text, [Span(kind, start, start + len(value))], [])


def make_pii_corpus(
    seed: int | str = 0, per_form: int = 40, negatives: int = 400, unmarked: int = 120
) -> list[PIICase]:
    """`per_form` cases of each written form, `negatives` texts that must stay as they are and
    `unmarked` names with no marker; the same seed gives the same corpus."""
    rng = random.Random(f"annobase-sim/pii/{seed}")
    cases = []
    for form, (kind, make) in _FORMS.items():
        for _ in range(per_form):
            cases.append(_case(form, kind, rng.choice(_CONTEXTS[kind]), make(rng)))
    for form, contexts in _NAME_FORMS.items():
        follow = _AFTER_TITLE if form == "name_before_title" else _AFTER_NAME
        for compound in (False, True):
            suffix = "_compound" if compound else ""
            for _ in range(per_form):
                name = _name(rng, compound)
                cases.append(_case(form + suffix, "name", rng.choice(contexts), name, rng.choice(follow)))
    for _ in range(negatives):
        text = _fill_negative(rng.choice(_NEGATIVES), rng)
        cases.append(PIICase("negative", text, [], [text]))
    for _ in range(unmarked):
        name = _name(rng, rng.random() < 0.2)
        cases.append(_case("unmarked_name", "name", rng.choice(_UNMARKED), name))
    # a few notes joining several forms, with the negatives' words between them
    for _ in range(per_form):
        parts = [rng.choice(cases) for _ in range(3)]
        text, spans, keep = "", [], []
        for part in parts:
            if part.form == "unmarked_name":
                continue
            spans += [Span(s.kind, s.start + len(text), s.end + len(text)) for s in part.pii]
            keep += part.keep
            text += part.text + "，"
        cases.append(PIICase("combined", text, spans, keep))
    return cases
