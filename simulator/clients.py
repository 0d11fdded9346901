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
