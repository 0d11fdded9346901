"""The eight industries of the Datong plan are configuration, each with its PII rule, and the
simulated world has a client in each."""

from __future__ import annotations

import re

import pytest

from annobase.settings import DEFAULT_CONFIG, load_settings
from simulator import CLIENTS, make_delivery

EIGHT = {
    "transport",
    "medical",
    "education",
    "culture_tourism",
    "manufacturing",
    "energy",
    "urban_governance",
    "emergency_management",
}


def test_the_eight_industries_and_the_heritage_key_are_configured_with_pii_rules():
    settings = load_settings()
    assert set(settings.industries) == EIGHT | {"cultural_heritage"}
    assert set(settings.cleaning.pii_industries) == {
        "medical",
        "education",
        "urban_governance",
        "emergency_management",
    }


def _config_with(tmp_path, old: str, new: str):
    text = DEFAULT_CONFIG.read_text()
    assert old in text
    path = tmp_path / "annobase.toml"
    path.write_text(text.replace(old, new, 1))
    return load_settings(str(path))


def test_a_pii_rule_is_mask_or_keep(tmp_path):
    with pytest.raises(ValueError, match="PII rules must be one of"):
        _config_with(
            tmp_path,
            'title = "Transport: roads, rail and city traffic"\npii = "keep"',
            'title = "T"\npii = "hide"',
        )


def test_the_older_pii_industries_list_still_masks(tmp_path):
    settings = _config_with(tmp_path, "[cleaning]\n", '[cleaning]\npii_industries = ["transport"]\n')
    assert "transport" in settings.cleaning.pii_industries and "medical" in settings.cleaning.pii_industries


def test_each_industry_has_a_simulated_client_whose_texts_carry_its_pii_where_it_masks():
    settings = load_settings()
    by_industry = {client.industry: client.client_id for client in CLIENTS.values()}
    assert set(by_industry) == set(settings.industries)
    for industry, client in by_industry.items():
        delivery = make_delivery(7, client, "d-1", "text", 12)
        texts = [data.decode() for data in delivery.files.values()]
        assert len(set(texts)) == 12 and all(40 <= len(text) <= 200 for text in texts)
        labels = {truth["label"] for truth in delivery.truth.values()}
        assert labels <= set(delivery.manifest["label_set"]) and len(labels) == 2
        with_pii = sum(bool(truth["pii"]) for truth in delivery.truth.values())
        if industry in {"urban_governance", "emergency_management", "medical"}:
            assert with_pii >= 4, industry
            assert any(re.search(r"1[3-9][0-9]{9}", text) for text in texts), industry
