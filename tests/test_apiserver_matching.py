"""The emulator's per-request reaction matching answers exactly as kmock's log scan does."""

from __future__ import annotations

import kmock
import requests

from devops_operator.sandbox.apiserver import EmulatedKubernetes
from devops_operator.sandbox.apiserver.matching import serving_order, spent, view_has


def test_view_has_agrees_with_kmock_for_every_kind_of_view() -> None:
    with EmulatedKubernetes() as server:
        emulator = server.emulator
        views = {
            "filter": emulator["get"],
            "chained-filters": emulator["get"]["/api/v1"],
            "or": emulator["post"] | emulator["/version"],
            "and": emulator["get"] & emulator[kmock.resource("", "v1", "configmaps")],
            "exclusion": emulator["get"] - emulator["/version"],
            "slice": emulator["get"][:2],
            "priority": emulator.fallback["get"],
        }
        session = requests.Session()
        for path in ("/version", "/api/v1", "/api/v1/namespaces/default/configmaps", "/apis", "/version"):
            session.get(server.url + path, timeout=5)
        session.post(server.url + "/api/v1/namespaces/default/configmaps",
                     json={"metadata": {"name": "x"}, "data": {"a": "b"}}, timeout=5)
        logged = emulator.requests
        assert len(logged) == 6
        for name, view in views.items():
            for request in logged:
                assert view_has(view, request) == (request in view), (name, request.method, request.url.path)


def test_reactions_still_win_over_fallbacks_in_priority_order() -> None:
    with EmulatedKubernetes() as server:
        emulator = server.emulator
        emulator["get /version"] << {"gitVersion": "v9.9.9-test"}
        answer = requests.get(server.url + "/version", timeout=5).json()
        assert answer == {"gitVersion": "v9.9.9-test"}
        # Everything the reaction does not cover still reaches the emulator's own fallbacks.
        assert requests.get(server.url + "/api/v1", timeout=5).json()["kind"] == "APIResourceList"
        first = serving_order(list(emulator._payloads))[0]
        assert first.response.payload == {"gitVersion": "v9.9.9-test"}


def test_a_slice_past_its_end_is_spent_and_no_longer_asked() -> None:
    """A one-off reaction (`[1:2]`: the second request only) answers exactly once, then is disabled
    instead of re-filtering the request log for every later request of a session-long server."""
    with EmulatedKubernetes() as server:
        emulator = server.emulator
        once = emulator["get /version"][1:2]
        once << 503 << {"kind": "Status", "code": 503}
        opened = emulator["get /version"][1:]
        other_branch = (emulator["get /version"][:1] | emulator["post"])
        assert not spent(once) and not spent(opened) and not spent(other_branch)
        codes = [requests.get(server.url + "/version", timeout=5).status_code for _ in range(4)]
        assert codes == [200, 503, 200, 200]
        assert spent(once) and spent(emulator.fallback["get"][:2]["/version"])
        assert not spent(opened) and not spent(other_branch)  # open-ended; an OR branch is not followed
        [reaction] = [r for r in emulator._payloads if r._source is once]
        assert reaction._disabled.is_set()
