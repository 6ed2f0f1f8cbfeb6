"""dependsOn (pure): cycles named with their path, and which dependencies hold a deployment back."""

from __future__ import annotations

from devops_operator.deploy.dependencies import find_cycle, not_ready


def graph(edges: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda key: edges.get(key, [])


def test_a_cycle_is_named_by_the_path_that_closes_it() -> None:
    edges = {"ns/web": ["ns/db", "ns/net"], "ns/db": ["ns/net"], "ns/net": ["ns/web"]}
    assert find_cycle("ns/web", graph(edges)) == ["ns/web", "ns/db", "ns/net", "ns/web"]
    assert find_cycle("ns/solo", graph({"ns/solo": ["ns/solo"]})) == ["ns/solo", "ns/solo"]


def test_no_cycle_in_a_diamond_or_a_long_chain() -> None:
    diamond = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}
    assert find_cycle("a", graph(diamond)) == []
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    assert find_cycle("n0", graph(chain)) == []
    chain["n4999"] = ["n2500"]
    assert find_cycle("n0", graph(chain))[0] == "n2500"


def test_not_ready_says_why() -> None:
    assert not_ready(["ns/db", "ns/net", "ns/dns"], {"ns/db": True, "ns/net": False}) == [
        "ns/net (not Ready)", "ns/dns (does not exist)"]
