"""Chinese text written by the simulated clients (outside world): reports, notes and transcripts.

Each snippet has a true label, worded so that a keyword model gets most of them right but not all
(a few snippets use the other label's words), and clinical notes and lesson transcripts carry PII
whose exact values are returned, so masking can be checked against what was put in.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from simulator.clients import LABEL_SETS

MIN_CHARS = 40
MAX_CHARS = 200
# share of snippets worded like the other label: what keeps a keyword pre-labeller imperfect
MISLEADING_RATE = 0.08
# share of resident IDs in clinical notes with a wrong check character: masking must still catch them
INVALID_ID_RATE = 0.15

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_AREA_CODES = ("140202", "140211", "140212", "140213", "140100", "140105", "110101", "110105", "130102")

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅志鹏晓东海燕文斌宇浩然欣怡子涵"
_PINYIN = ("wang", "li", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun", "gao")
_MAIL_DOMAINS = ("163.com", "qq.com", "126.com", "sina.com", "xiehe-clinic.cn", "dtedu.cn")


class PII(NamedTuple):
    """One piece of personal data put into a snippet; `valid` is False for a deliberately bad one."""

    kind: str  # name, resident_id, mobile, landline, email
    value: str
    valid: bool


class TextSample(NamedTuple):
    text: str
    label: str
    pii_spans: list[PII]


class TextItem(NamedTuple):
    item_id: str
    text: str
    label: str
    pii_spans: list[PII]


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character (ISO 7064 MOD 11-2) of a resident ID's first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"expected 17 digits, got {first17!r}")
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(value: str) -> bool:
    """18 characters whose last is the check character of the first 17 digits."""
    return len(value) == 18 and value[:17].isdigit() and resident_id_check_digit(value[:17]) == value[17]


def _digits(r: Callable[[], float], n: int) -> str:
    return "".join(str(int(r() * 10)) for _ in range(n))


def _first17(r: Callable[[], float]) -> str:
    area = _AREA_CODES[int(r() * len(_AREA_CODES))]
    birth = f"{1935 + int(r() * 88)}{1 + int(r() * 12):02d}{1 + int(r() * 28):02d}"
    return area + birth + _digits(r, 3)


def _valid_id(r: Callable[[], float]) -> str:
    first17 = _first17(r)
    return first17 + resident_id_check_digit(first17)


def _invalid_id(r: Callable[[], float]) -> str:
    first17 = _first17(r)
    wrong = _ID_CHECK.replace(resident_id_check_digit(first17), "")
    return first17 + wrong[int(r() * len(wrong))]


def valid_resident_id(rng: random.Random) -> str:
    return _valid_id(rng.random)


def invalid_resident_id(rng: random.Random) -> str:
    """A well-formed 18-digit ID whose check character is wrong, as a typo would leave it."""
    return _invalid_id(rng.random)


# --- slot fillers: each takes rng.random and returns the text for one {slot} -------------------


def _int(lo: int, hi: int) -> Callable[[Callable[[], float]], str]:
    return lambda r: str(lo + int(r() * (hi - lo + 1)))


def _one_of(*choices: str) -> Callable[[Callable[[], float]], str]:
    return lambda r: choices[int(r() * len(choices))]


def _decimal(lo: float, span: float, places: int = 1) -> Callable[[Callable[[], float]], str]:
    return lambda r: f"{lo + r() * span:.{places}f}"


_SLOTS: dict[str, Callable[[Callable[[], float]], str]] = {
    "date": lambda r: f"{1 + int(r() * 12)}月{1 + int(r() * 28)}日",
    "shift": _one_of("早", "中", "夜"),
    "mine": _one_of("同忻", "塔山", "麻家梁", "马脊梁", "忻州窑", "燕子山"),
    "face": _int(8101, 8412),
    "roadway": _one_of("回风巷", "运输巷", "进风巷", "切眼", "采空区密闭墙前"),
    "gas_hi": _decimal(1.02, 1.4, 2),
    "gas_lo": _decimal(0.05, 0.5, 2),
    "co": _int(30, 120),
    "co_lo": _int(0, 8),
    "q": _int(80, 400),
    "air": _int(600, 1500),
    "minutes": _int(5, 40),
    "m": _int(2, 9),
    "emp": _int(1000, 9999),
    "cave": _int(1, 45),
    "wall": _one_of("北壁", "东壁", "西壁", "南壁", "窟顶", "明窗", "中心塔柱"),
    "temple": _one_of("华严寺大雄宝殿", "善化寺三圣殿", "悬空寺", "永安寺传法正宗殿", "观音堂"),
    "area": _int(5, 300),
    "crack": _int(3, 120),
    "photos": _int(20, 400),
    "temp": _int(-15, 32),
    "rh": _int(15, 80),
    "dept": _one_of("心内科", "呼吸科", "消化内科", "内分泌科", "全科", "急诊科"),
    "sex": _one_of("男", "女"),
    "age": _int(3, 92),
    "sbp_hi": _int(170, 220),
    "dbp_hi": _int(100, 130),
    "sbp": _int(105, 138),
    "dbp": _int(65, 88),
    "spo2_lo": _int(78, 89),
    "hours": _int(1, 12),
    "gcs": _int(5, 11),
    "temp_hi": _decimal(39.0, 1.8),
    "k_hi": _decimal(6.3, 1.2),
    "glu": _decimal(4.6, 2.0),
    "ml": _int(100, 600),
    "weeks": _int(1, 4),
    "grade": _one_of("三年级", "五年级", "初一", "初二", "高一"),
    "subject": _one_of("数学", "语文", "物理", "英语", "地理"),
    "concept": _one_of(
        "分数的通分", "勾股定理", "一元二次方程", "光的折射", "比喻句", "平行四边形的面积", "水循环"
    ),
    "a": _int(2, 99),
    "b": _int(2, 99),
    "c": _int(2, 99),
    "page": _int(3, 180),
    "line": _int(1, 86),
    "road": _one_of("御河东路", "魏都大道", "云中路", "同泉路", "迎宾街", "文兴路"),
    "km": _int(3, 240),
    "speed": _int(90, 160),
    "spot": _one_of("云冈石窟", "大同古城墙", "华严寺", "悬空寺", "九龙壁", "方特欢乐世界"),
    "stars": _int(1, 5),
    "part": _one_of("齿轮轴", "变速箱壳体", "法兰盘", "齿圈", "传动轴"),
    "batch": _int(10000, 99999),
    "mm": _decimal(0.05, 0.6, 2),
    "street": _one_of("新建南路", "永泰街道", "北关街道", "南关街道", "向阳街道", "开源街道"),
    "district": _one_of("平城区", "云冈区", "新荣区", "云州区"),
    "town": _one_of("浑源县", "灵丘县", "广灵县", "阳高县", "天镇县", "左云县"),
    "people": _int(2, 60),
}


def _name(r: Callable[[], float]) -> PII:
    given = "".join(_GIVEN[int(r() * len(_GIVEN))] for _ in range(1 + int(r() * 2)))
    return PII("name", _SURNAMES[int(r() * len(_SURNAMES))] + given, True)


def _resident_id(r: Callable[[], float]) -> PII:
    if r() < INVALID_ID_RATE:
        return PII("resident_id", _invalid_id(r), False)
    return PII("resident_id", _valid_id(r), True)


def _mobile(r: Callable[[], float]) -> PII:
    return PII("mobile", "1" + "3456789"[int(r() * 7)] + _digits(r, 9), True)


def _landline(r: Callable[[], float]) -> PII:
    if r() < 0.5:
        return PII("landline", "010-" + str(2 + int(r() * 8)) + _digits(r, 7), True)
    return PII("landline", "0352-" + str(2 + int(r() * 8)) + _digits(r, 6), True)


def _email(r: Callable[[], float]) -> PII:
    local = _PINYIN[int(r() * len(_PINYIN))] + _PINYIN[int(r() * len(_PINYIN))] + _digits(r, 1 + int(r() * 3))
    return PII("email", local + "@" + _MAIL_DOMAINS[int(r() * len(_MAIL_DOMAINS))], True)


_PII_SLOTS: dict[str, Callable[[Callable[[], float]], PII]] = {
    "name": _name,
    "rid": _resident_id,
    "mobile": _mobile,
    "landline": _landline,
    "email": _email,
}


@dataclass(frozen=True)
class _Corpus:
    """One industry's phrasing: `clauses` carry their label's words, `misleading` the other's."""

    headers: tuple[str, ...]
    clauses: dict[str, tuple[str, ...]]
    misleading: dict[str, tuple[str, ...]]
    neutral: tuple[str, ...]
    closings: tuple[str, ...]
    pii: tuple[str, ...] = ()
    pii_rate: float = 0.0  # chance of each extra PII clause, up to three
    separator: str = "，"


_CORPORA: dict[str, _Corpus] = {
    "energy": _Corpus(
        headers=(
            "{date}{shift}班 {mine}矿{face}工作面安全巡检：",
            "{mine}矿安全监控日报（{date}）：",
            "调度室通报，{mine}矿{roadway}：",
        ),
        clauses={
            "hazard": (
                "{roadway}瓦斯浓度{gas_hi}%，已超限，立即撤人并切断电源",
                "顶板离层仪读数突增，局部片帮冒顶，存在重大隐患",
                "皮带机跑偏严重，托辊卡死发热，有着火隐患",
                "局部通风机停风{minutes}分钟，巷道瓦斯积聚超限",
                "一氧化碳浓度{co}ppm，超限报警，人员已撤出",
                "工作面涌水量增至{q}立方米每小时，有透水隐患，已撤人",
                "锚杆支护失效{m}处，顶板下沉明显，隐患未消除",
                "责令停产整改，隐患排除前严禁作业",
            ),
            "normal": (
                "{roadway}瓦斯浓度{gas_lo}%，通风正常",
                "顶板完整，支护到位，运行平稳",
                "皮带机运行平稳，无跑偏，托辊正常",
                "各类传感器读数正常，监控系统在线",
                "一氧化碳浓度{co_lo}ppm，处于正常范围",
                "排水系统运转正常，涌水量稳定",
                "风量{air}立方米每分钟，风流平稳",
                "交接班正常，设备运行平稳",
            ),
        },
        misleading={
            "hazard": (
                "{roadway}甲烷读数{gas_hi}%，请通风区复核",
                "顶板有掉渣声响，支架压力持续上升",
                "皮带机滚筒处有焦糊味",
            ),
            "normal": (
                "经复查，上班次报告的隐患已整改闭合",
                "瓦斯超限报警系传感器标校所致，现场复测无异常",
                "开展撤人应急演练一次",
            ),
        },
        neutral=("带班矿长下井跟班", "采煤机割煤{m}刀", "电缆吊挂整齐", "安全员完成交接记录"),
        closings=("记录人：安监员（工号A{emp}）。", "已报调度室备案。", "特此记录。"),
    ),
    "cultural_heritage": _Corpus(
        headers=(
            "云冈石窟第{cave}窟{wall}巡查记录：",
            "{temple}彩塑病害调查（{date}）：",
            "云冈石窟第{cave}窟数字化采集备注：",
        ),
        clauses={
            "damaged": (
                "主尊佛像面部风化严重，鼻部残缺",
                "彩绘剥落面积约{area}平方厘米，颜料层起甲",
                "岩体出现纵向裂隙，长约{crack}厘米，需加固",
                "题记字迹漫漶，局部酥碱脱落",
                "窟檐渗水，壁面返碱泛白，病害持续发展",
                "飞天手臂残断，残块散落于龛下",
                "佛龛龛楣断裂，局部坍塌",
            ),
            "intact": (
                "主尊结跏趺坐，造型完整",
                "彩绘色泽鲜明，保存完好",
                "龛楣雕饰清晰完整，无缺损",
                "题记清晰可辨，保存状况良好",
                "岩体稳定，监测数据正常",
                "胁侍菩萨衣纹流畅，整体完好",
                "千佛龛排列整齐，造像完整",
            ),
        },
        misleading={
            "damaged": ("背光火焰纹仅存轮廓", "莲座下部已难辨原貌", "手印细节无法识别"),
            "intact": ("与上次测绘对比，未见新增风化和剥落", "去年修复的裂隙区域保持稳定，无残缺"),
        },
        neutral=(
            "采集照片{photos}张",
            "三维扫描点云已上传",
            "环境温度{temp}摄氏度，相对湿度{rh}%",
            "北魏时期开凿",
        ),
        closings=("数据已归档。", "待专家复核。", "记录人：保护研究所。"),
    ),
    "medical": _Corpus(
        headers=(
            "{dept}门诊病历 患者{name}，{sex}，{age}岁。",
            "姓名：{name} 性别：{sex} 年龄：{age}岁 科室：{dept}。",
            "{date}接诊，患者{name}，{age}岁，{sex}。",
        ),
        clauses={
            "urgent": (
                "主诉胸痛{hours}小时，伴大汗、呼吸困难",
                "血压{sbp_hi}/{dbp_hi}mmHg，心电图示ST段抬高",
                "意识模糊，GCS评分{gcs}分，需紧急处理",
                "血氧饱和度{spo2_lo}%，立即吸氧并转急诊",
                "高热{temp_hi}℃伴抽搐，立即处置",
                "建议立即转上级医院，开通绿色通道",
                "急查心肌酶，危急值已通知医生",
            ),
            "routine": (
                "复诊，血压{sbp}/{dbp}mmHg，控制平稳",
                "常规体检，各项指标正常",
                "慢性胃炎随访，症状明显缓解",
                "空腹血糖{glu}mmol/L，控制良好",
                "开具常规处方，{weeks}周后复查",
                "咳嗽三天，无发热，对症治疗",
                "定期随访，病情稳定",
            ),
        },
        misleading={
            "urgent": ("血钾{k_hi}mmol/L，请尽快复查", "左侧肢体无力{hours}小时", "呕血约{ml}毫升"),
            "routine": ("否认胸痛、呼吸困难，无意识障碍", "既往急诊就诊一次，现已痊愈"),
        },
        neutral=("既往体健", "过敏史：无", "否认家族遗传病史"),
        closings=("医师签名：已电子签章。", "病历已归档。"),
        pii=(
            "身份证号：{rid}",
            "联系电话：{mobile}",
            "家属电话：{landline}",
            "邮箱：{email}",
            "紧急联系人{name}，电话{mobile}",
        ),
        pii_rate=0.7,
    ),
    "education": _Corpus(
        headers=(
            "{grade}{subject}课堂实录，授课教师：{name}。",
            "{name}老师{grade}{subject}课片段：",
            "{date}{grade}{subject}公开课转写，主讲{name}老师。",
        ),
        clauses={
            "question": (
                "同学们，{a}加{b}等于多少？",
                "谁能说说{concept}的关键步骤是什么？",
                "请大家思考，为什么这里要先通分？",
                "学生提问：老师，这道题为什么不能直接约分？",
                "这个结论对吗？请举手回答",
                "大家想一想，还有没有别的解法？",
                "有没有同学知道{concept}是谁最先提出的？",
            ),
            "explanation": (
                "我们来看{concept}，它的核心是先找出已知条件",
                "所以答案是{c}，因为两边同时乘以{a}",
                "这里的关键在于单位要统一，然后再代入公式",
                "总结一下，{concept}分三步完成",
                "注意，这一步的依据是等式的性质",
                "举个例子，{a}个苹果平均分给{b}个人",
            ),
        },
        misleading={
            "question": ("请同学们说出{concept}的定义", "哪位同学来黑板上演示一下"),
            "explanation": (
                "为什么要这样做？因为分母不同不能直接相加",
                "你们可能会问这一步怎么来的？其实就是移项",
            ),
        },
        neutral=("（板书）", "（学生讨论）", "下面翻到课本第{page}页"),
        closings=("下课。", "今天的作业是练习册第{page}页。"),
        pii=("家长联系电话：{mobile}", "课后答疑邮箱：{email}", "学校办公室电话：{landline}"),
        pii_rate=0.3,
        separator="。",
    ),
    "transport": _Corpus(
        headers=(
            "{date}{road}路况通报：",
            "{line}路公交车载终端记录（{date}）：",
            "交警指挥中心{shift}班值班记录，{road}：",
        ),
        clauses={
            "incident": (
                "{road}与{line}号路口发生两车追尾，占用一条车道",
                "一辆货车在高速{km}公里处抛锚，后方排队约{m}公里",
                "{line}路公交车突发故障停驶，乘客已疏散换乘",
                "测速点记录车速{speed}公里每小时，严重超速",
                "路面结冰，多车打滑，已封闭匝道",
                "信号灯故障{minutes}分钟，路口拥堵严重",
            ),
            "normal": (
                "{road}车流平稳，平均车速正常",
                "{line}路公交车准点到站，运行正常",
                "各路口信号灯运行正常，无拥堵",
                "高速{km}公里处路面干燥，通行顺畅",
                "早高峰车流量较大但秩序良好",
                "道路施工已完成，恢复双向通行",
            ),
        },
        misleading={
            "incident": ("{road}有车辆临时停靠，后方车辆缓行", "路口监控显示车辆排队略长"),
            "normal": ("上午的追尾事故已处置完毕，道路恢复畅通", "故障车辆已拖离，现场无积压"),
        },
        neutral=("天气晴", "巡逻车已到位", "视频监控在线"),
        closings=("值班员已签字。", "已通报交通广播。", "记录完毕。"),
    ),
    "culture_tourism": _Corpus(
        headers=(
            "{spot}游客留言（{date}）：",
            "{date}{spot}服务评价，评分{stars}星：",
            "文旅服务热线记录，{spot}：",
        ),
        clauses={
            "complaint": (
                "排队等候超过{hours}小时，现场无人引导",
                "景区内餐饮价格过高，明码标价不清",
                "导游讲解敷衍，擅自缩短游览时间",
                "停车场车位不足，指示牌混乱",
                "售票窗口只开一个，退票手续繁琐",
            ),
            "praise": (
                "讲解员专业耐心，讲解生动",
                "景区环境整洁，标识清楚",
                "预约入园方便，入口秩序井然",
                "文创产品很有特色，值得推荐",
                "志愿者热情周到，帮忙寻回了遗失物品",
            ),
        },
        misleading={
            "complaint": ("风景很美，讲解员也很专业", "门票价格合理，园区很大"),
            "praise": ("原本担心人多排队，结果很快就进去了", "之前听说服务差，这次体验完全不同"),
        },
        neutral=("当天游客较多", "天气晴朗", "乘坐旅游专线到达"),
        closings=("已转景区处理。", "感谢您的反馈。", "记录人：服务中心。"),
    ),
    "manufacturing": _Corpus(
        headers=(
            "{part}质检记录，批次{batch}：",
            "{date}{shift}班产线巡检，{part}：",
            "来料检验报告（批次{batch}）：",
        ),
        clauses={
            "defect": (
                "表面划痕长约{crack}毫米，超出允差",
                "尺寸偏差{mm}毫米，超出公差带",
                "热处理硬度不足，判定不合格",
                "齿面出现点蚀，需返工",
                "焊缝有气孔{m}处，判为缺陷品",
            ),
            "pass": (
                "尺寸偏差{mm}毫米，在公差范围内",
                "外观无划痕、无磕碰，判定合格",
                "硬度检测符合图纸要求",
                "动平衡测试通过",
                "抽检{m}件全部合格",
            ),
        },
        misleading={
            "defect": ("外观良好，无磕碰", "首件检验合格"),
            "pass": ("上一批次的划痕问题已整改", "复检后确认为测量误差，实际无缺陷"),
        },
        neutral=("设备编号已登记", "检验员交接完成", "环境温度{temp}摄氏度"),
        closings=("检验员签字确认。", "结果已录入MES系统。", "记录完毕。"),
    ),
    "urban_governance": _Corpus(
        headers=(
            "12345市民热线工单（{date}），来电人姓名：{name}。",
            "{district}{street}网格员巡查记录：",
            "{date}来电，{district}居民，联系人：{name}。",
        ),
        clauses={
            "complaint": (
                "{street}小区垃圾{m}天无人清运，气味难闻",
                "夜间施工噪音扰民，持续到凌晨",
                "{street}路面塌陷，存在安全隐患",
                "小区门口车辆乱停乱放，堵塞消防通道",
                "路灯损坏{m}盏，夜间出行不便",
            ),
            "consultation": (
                "咨询居住证办理需要哪些材料",
                "询问{street}社区医保缴费时间",
                "咨询老旧小区改造的报名方式",
                "询问公积金提取的办理流程",
                "咨询新生儿落户在哪里办理",
            ),
        },
        misleading={
            "complaint": ("想问一下，为什么小区垃圾一直没人收", "请问施工噪音的问题什么时候能解决"),
            "consultation": ("之前投诉的路灯已修好，现咨询", "不是投诉，只是想了解"),
        },
        neutral=("已转{street}办理", "工单编号已生成", "网格员已登记"),
        closings=("请按时限办结。", "已回访。", "工单已派发。"),
        pii=("联系电话：{mobile}", "身份证号：{rid}", "联系人：{name}，电话{mobile}", "邮箱：{email}"),
        pii_rate=0.6,
    ),
    "emergency_management": _Corpus(
        headers=(
            "{town}应急值守记录（{date}）：",
            "应急指挥中心{shift}班接报，{town}：",
            "{date}{town}灾情信息报送：",
        ),
        clauses={
            "emergency": (
                "山林起火，过火面积约{area}亩，火势蔓延",
                "暴雨致河水漫堤，{people}户群众需转移",
                "化工厂发生泄漏，已启动二级响应",
                "山体滑坡阻断道路，{people}人被困",
                "仓库起火冒浓烟，消防力量已出动",
            ),
            "routine": (
                "辖区内无灾情报告，值守正常",
                "防汛物资盘点完成，储备充足",
                "组织开展应急疏散演练一次",
                "气象预警已解除，各点位恢复正常",
                "隐患排查{m}处，均已整改",
            ),
        },
        misleading={
            "emergency": ("群众反映远处有烟，请尽快核实", "水位持续上涨，接近警戒线"),
            "routine": ("演练模拟化工厂泄漏，现场处置规范", "此前报告的火情已扑灭，无人员伤亡"),
        },
        neutral=("值班领导在岗", "通信保障正常", "已报市应急局"),
        closings=("持续跟踪。", "值班员已签字。", "信息已报送。"),
        pii=("报警联系人：{name}，电话{mobile}", "联系电话：{mobile}", "现场负责人电话{landline}"),
        pii_rate=0.5,
    ),
}


class _Template(NamedTuple):
    text: str  # with positional {} slots
    fillers: tuple[Callable[[Callable[[], float]], str | PII], ...]


def _compile(template: str) -> _Template:
    """Parse a template's slots once, so filling it costs only the draws it needs."""
    parsed = list(string.Formatter().parse(template))
    text = "".join(
        literal.replace("{", "{{").replace("}", "}}") + ("{}" if name else "")
        for literal, name, _, _ in parsed
    )
    fillers = tuple(_PII_SLOTS.get(name) or _SLOTS[name] for _, name, _, _ in parsed if name)
    return _Template(text, fillers)


def _fill(template: _Template, r: Callable[[], float]) -> tuple[str, tuple[PII, ...]]:
    if not template.fillers:
        return template.text, ()
    values = [filler(r) for filler in template.fillers]
    pii = tuple(v for v in values if isinstance(v, PII))
    return template.text.format(*[v.value if isinstance(v, PII) else v for v in values]), pii


class _Compiled(NamedTuple):
    """An industry's template groups by index, so a fragment source only needs (group, template)."""

    groups: tuple[tuple[_Template, ...], ...]
    sizes: tuple[int, ...]
    clauses: dict[str, int]
    misleading: dict[str, int]
    pii_rate: float
    separator: str


_HEADERS, _NEUTRAL, _CLOSINGS, _PII_CLAUSES = range(4)


def _compile_corpus(c: _Corpus) -> _Compiled:
    labels = sorted(c.clauses)
    groups = [c.headers, c.neutral, c.closings, c.pii]
    groups += [c.clauses[label] for label in labels] + [c.misleading[label] for label in labels]
    return _Compiled(
        tuple(tuple(_compile(t) for t in group) for group in groups),
        tuple(len(group) for group in groups),
        {label: 4 + i for i, label in enumerate(labels)},
        {label: 4 + len(labels) + i for i, label in enumerate(labels)},
        c.pii_rate,
        c.separator,
    )


_COMPILED: dict[str, _Compiled] = {industry: _compile_corpus(c) for industry, c in _CORPORA.items()}

# (group, template index) -> (text, pii)
_Draw = Callable[[int, int], tuple[str, tuple[PII, ...]]]


def _compose(corpus: _Compiled, label: str, r: Callable[[], float], draw: _Draw) -> TextSample:
    """Header, the label's clauses (some PII and neutral ones), closing: MIN_CHARS..MAX_CHARS long."""
    sizes, sep = corpus.sizes, corpus.separator
    group = corpus.misleading[label] if r() < MISLEADING_RATE else corpus.clauses[label]
    header, found = draw(_HEADERS, int(r() * sizes[_HEADERS]))
    pii = [*found]
    first = int(r() * sizes[group])
    used = [first]  # templates already in the body: t for `group`, -1 - t for neutral ones
    body, found = draw(group, first)
    pii += found
    n_pii = 0
    while n_pii < 3 and r() < corpus.pii_rate:
        n_pii += 1
        clause, found = draw(_PII_CLAUSES, int(r() * sizes[_PII_CLAUSES]))
        body += sep + clause
        pii += found
    closing, closing_pii = draw(_CLOSINGS, int(r() * sizes[_CLOSINGS]))
    # a body ending in ？ or 。 gets no full stop and no separator after it
    ends = body[-1] in "？。"
    room = MAX_CHARS - len(header) - len(closing) - 1
    wanted = MIN_CHARS + int(r() * (MAX_CHARS - MIN_CHARS)) - len(header) - len(closing) - 1
    for _ in range(20):
        if len(body) - ends >= wanted:
            break
        if r() < 0.7:
            t = int(r() * sizes[group])
            if t in used:
                continue
            clause, found = draw(group, t)
        else:
            t = int(r() * sizes[_NEUTRAL])
            if -1 - t in used:
                continue
            clause, found = draw(_NEUTRAL, t)
            t = -1 - t
        candidate = body + clause if ends else body + sep + clause
        clause_ends = clause[-1] in "？。"
        if len(candidate) - clause_ends > room:
            continue
        used.append(t)
        body, ends = candidate, clause_ends
        pii += found
    pii += closing_pii
    return TextSample(header + body + closing if ends else header + body + "。" + closing, label, pii)


def _check_industry(industry: str) -> _Compiled:
    if industry not in _COMPILED:
        raise ValueError(f"no text corpus for industry {industry!r}; known: {sorted(_COMPILED)}")
    return _COMPILED[industry]


def _pick_label(industry: str, r: Callable[[], float]) -> str:
    labels = LABEL_SETS[industry]["classification"]
    return labels[int(r() * len(labels))]


def make_text(rng: random.Random, industry: str, label: str | None = None) -> TextSample:
    """One snippet of MIN_CHARS..MAX_CHARS characters with its true label and the PII put in."""
    corpus = _check_industry(industry)
    r = rng.random
    return _compose(corpus, label or _pick_label(industry, r), r, lambda g, t: _fill(corpus.groups[g][t], r))


def make_utterance(rng: random.Random, industry: str, label: str | None = None) -> TextSample:
    """A short spoken sentence (one clause), so synthetic audio stays a few seconds long."""
    corpus = _check_industry(industry)
    r = rng.random
    label = label or _pick_label(industry, r)
    group = corpus.groups[corpus.misleading[label] if r() < MISLEADING_RATE else corpus.clauses[label]]
    text, pii = _fill(group[int(r() * len(group))], r)
    return TextSample(text if text[-1] in "？。" else text + "。", label, list(pii))


# filled variants kept per template when streaming: numbers and PII repeat across a large stream,
# which is what buys the speed (a million snippets in seconds)
_VARIANTS = 1024


def iter_text_items(seed: int | str, industry: str, n: int) -> Iterator[TextItem]:
    """Lazily yield `n` labelled snippets with ids i-000001...; the same seed gives the same items.

    Only the current item and a few thousand pre-filled fragments are held, so a million-item
    delivery streams in constant memory.
    """
    corpus = _check_industry(industry)
    rng = random.Random(f"annobase-sim/text/{seed}/{industry}")
    r = rng.random
    variants = [
        [[_fill(t, r) for _ in range(_VARIANTS if t.fillers else 1)] for t in group]
        for group in corpus.groups
    ]

    def draw(g: int, t: int) -> tuple[str, tuple[PII, ...]]:
        pool = variants[g][t]
        return pool[int(r() * len(pool))]

    for k in range(1, n + 1):
        text, label, pii = _compose(corpus, _pick_label(industry, r), r, draw)
        yield TextItem(f"i-{k:06d}", text, label, pii)
