"""Simulated clients of the base (outside world): who uploads, from which industry, with which labels.

Kept as plain data so a scenario can add a client or an industry without touching the generators.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    industry: str


CLIENTS: dict[str, Client] = {
    client.client_id: client
    for client in (
        Client("jinneng-mine-safety", "晋能控股煤矿安全监测中心", "energy"),
        Client("yungang-grottoes", "云冈石窟研究院数字化中心", "cultural_heritage"),
        Client("xiehe-clinic", "协和社区诊所", "medical"),
        Client("datong-schools", "大同市智慧教育平台", "education"),
        Client("datong-transit", "大同市公交集团智慧交通中心", "transport"),
        Client("datong-tourism", "大同市文化和旅游局游客服务中心", "culture_tourism"),
        Client("datong-gear-works", "大同齿轮厂质量部", "manufacturing"),
        Client("datong-12345-hotline", "大同市12345政务服务便民热线", "urban_governance"),
        Client("datong-emergency", "大同市应急管理局指挥中心", "emergency_management"),
    )
}

# industry -> task -> default label set. Transcription has no labels: the truth is free text.
LABEL_SETS: dict[str, dict[str, list[str]]] = {
    "energy": {
        "classification": ["hazard", "normal"],
        "detection": ["miner", "helmet", "conveyor"],
    },
    "cultural_heritage": {
        "classification": ["damaged", "intact"],
        "detection": ["statue", "niche", "inscription"],
    },
    "medical": {
        "classification": ["urgent", "routine"],
        "detection": ["lesion", "organ"],
    },
    "education": {
        "classification": ["question", "explanation"],
        "detection": ["blackboard", "teacher", "student"],
    },
    "transport": {
        "classification": ["incident", "normal"],
        "detection": ["car", "bus", "pedestrian"],
    },
    "culture_tourism": {
        "classification": ["complaint", "praise"],
        "detection": ["visitor", "signboard", "ticket_gate"],
    },
    "manufacturing": {
        "classification": ["defect", "pass"],
        "detection": ["scratch", "dent", "crack"],
    },
    "urban_governance": {
        "classification": ["complaint", "consultation"],
        "detection": ["garbage", "illegal_parking", "road_damage"],
    },
    "emergency_management": {
        "classification": ["emergency", "routine"],
        "detection": ["fire", "smoke", "flood"],
    },
}

# modality -> the task done on it (CONTRACT.md section 2)
MODALITY_TASKS: dict[str, str] = {
    "text": "classification",
    "speech": "transcription",
    "image": "detection",
    "multimodal": "classification",
}


def label_set(industry: str, task: str) -> list[str]:
    """The default label set a client of `industry` sends with a `task` delivery."""
    if task == "transcription":
        return []
    return list(LABEL_SETS[industry][task])
