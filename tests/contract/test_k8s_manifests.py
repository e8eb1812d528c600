"""deploy/k8s: every manifest is valid against the Kubernetes schemas (offline: the schemas ship in
the pinned kubernetes-validate package), the kustomizations point at files that exist, and the
security properties the docs promise are in the manifests."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VERSION = "1.37.0"


def _documents() -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(ROOT.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


DOCS = _documents()


def _kind(kind: str) -> list[dict]:
    return [doc for _p, doc in DOCS if doc["kind"] == kind]


@pytest.mark.parametrize(
    ("path", "doc"), DOCS, ids=[f"{p.relative_to(ROOT)}:{d['kind']}/{d['metadata']['name']}" for p, d in DOCS]
)
def test_every_manifest_is_valid_against_the_kubernetes_schema(path, doc):
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_validation_rejects_a_misspelt_field():
    deployment = copy.deepcopy(_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def test_kustomizations_list_files_that_exist():
    for kustomization in ROOT.rglob("kustomization.yaml"):
        body = yaml.safe_load(kustomization.read_text())
        for resource in body["resources"]:
            target = (kustomization.parent / resource).resolve()
            assert target.exists(), f"{kustomization}: {resource}"


def test_controllers_run_unprivileged_with_probes_and_autoscaling():
    (controller,) = [d for d in _kind("Deployment") if d["metadata"]["name"] == "stockade-controller"]
    pod = controller["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "readinessProbe" in container
    assert "livenessProbe" in container
    assert any(h["spec"]["scaleTargetRef"]["name"] == "stockade-controller" for h in _kind("HorizontalPodAutoscaler"))


def test_network_policies_deny_by_default_and_only_controllers_take_traffic():
    policies = {p["metadata"]["name"]: p for p in _kind("NetworkPolicy")}
    deny = policies["default-deny"]
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ingress_for = [
        p["spec"]["podSelector"]
        for p in policies.values()
        if "Ingress" in p["spec"]["policyTypes"] and p["spec"].get("ingress")
    ]
    roles = [s.get("matchLabels", {}).get("stockade.dev/role") for s in ingress_for]
    assert "invoker" not in roles  # invokers take no inbound connection
    state = policies["state-ingress"]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]
    assert set(state["values"]) == {"controller", "invoker"}
    # The invokers' (egress proxy's) way out excludes private ranges and the metadata service.
    internet = policies["invoker-egress"]["spec"]["egress"][-1]["to"][0]["ipBlock"]
    assert "169.254.0.0/16" in internet["except"]
    assert "10.0.0.0/8" in internet["except"]
