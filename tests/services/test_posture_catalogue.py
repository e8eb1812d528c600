"""The posture's risk catalogue is data, validated on load."""

import json
from importlib import resources

import pytest

from stockade.services.posture import CATALOGUE, RISK_IDS, load_risk_catalogue


def _doc():
    return json.loads((resources.files("stockade.services") / "policies" / "posture.json").read_text())


def test_the_packaged_catalogue_describes_every_risk_with_a_reason():
    assert set(CATALOGUE.risks) == RISK_IDS
    assert all(entry["reason"] for entry in CATALOGUE.risks.values())


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["risks"].pop("tamper"),
        lambda d: d["risks"].update({"made_up": d["risks"]["tamper"]}),
        lambda d: d["risks"]["tamper"].update({"severity": "catastrophic"}),
        lambda d: d["risks"]["old_key"].pop("reason"),
        lambda d: d.update({"key_age_warn_days": 0}),
    ],
)
def test_a_broken_catalogue_is_refused(change):
    doc = _doc()
    change(doc)
    with pytest.raises(ValueError, match=r"posture\.json"):
        load_risk_catalogue(json.dumps(doc))
