"""Object storage on top of kmock's ``objects``: resourceVersions and the watch history of writes.

Every write goes through here, so every write gets the next global resourceVersion and lands in
the event history. Objects put straight into ``emulator.objects`` by tests (kmock style) get their
server-side metadata on first read, as if they had always been there.
"""

from __future__ import annotations

import copy
from typing import Any

import kmock

from devops_operator.sandbox.apiserver import metadata
from devops_operator.sandbox.apiserver.watching import ADDED, DELETED, Change, EventHub, EventLog

ObjectKey = tuple[kmock.resource, str | None, str]


# Versions of one object kept in kmock's history (tests may look at the recent ones).
HISTORY_LIMIT = 20


class ResourceVersionClock:
    """One counter for the whole server, like etcd's revision."""

    def __init__(self) -> None:
        self._value = 0

    @property
    def current(self) -> int:
        return self._value

    def tick(self) -> int:
        self._value += 1
        return self._value


class ObjectStore:
    def __init__(self, objects: kmock.ObjectsArray, clock: ResourceVersionClock, events: EventHub) -> None:
        self._objects = objects
        self._clock = clock
        self._events = events

    @property
    def clock(self) -> ResourceVersionClock:
        return self._clock

    def events(self, storage: kmock.resource) -> EventLog:
        return self._events.log(storage)

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """A private copy of the live object, or ``None`` if absent or deleted."""
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._adopt(key))

    def items(self, storage: kmock.resource, namespace: str | None = None) -> list[tuple[ObjectKey, dict[str, Any]]]:
        """Live objects of a resource (optionally of one namespace), ordered by namespace and name."""
        keys = [key for key in list(self._objects) if key[0] == storage and (namespace is None or key[1] == namespace)]
        found = [(key, self.get(key)) for key in sorted(keys, key=lambda key: (key[1] or "", key[2]))]
        return [(key, obj) for key, obj in found if obj is not None]

    def all_items(self) -> list[tuple[ObjectKey, dict[str, Any]]]:
        found = [(key, self.get(key)) for key in list(self._objects)]
        return [(key, obj) for key, obj in found if obj is not None]

    def write(self, key: ObjectKey, obj: dict[str, Any], change_type: str) -> dict[str, Any]:
        """Store a new state under a new resourceVersion and record the change for watches."""
        previous = self.get(key)
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self._clock.tick())
        if key in self._objects:
            history = self._objects[key].history
            history.append(stored)
            # Only the newest versions are ever read (watch replay has its own log): bound memory.
            if len(history) > HISTORY_LIMIT:
                del history[: len(history) - HISTORY_LIMIT]
        else:
            self._objects[key] = stored
        self._record(key, change_type, stored, previous)
        return copy.deepcopy(stored)

    def remove(self, key: ObjectKey) -> dict[str, Any] | None:
        """Delete for good: the final state gets a new resourceVersion and a DELETED event."""
        final = self.get(key)
        if final is None:
            return None
        final["metadata"]["resourceVersion"] = str(self._clock.tick())
        self._objects[key].history.append(copy.deepcopy(final))
        self._objects[key].delete()
        self._record(key, DELETED, final, None)
        return final

    def forget(self, key: ObjectKey) -> None:
        """Drop an object and its history altogether (its resource stops existing)."""
        self.remove(key)
        if key in self._objects:
            del self._objects[key]

    def _record(self, key: ObjectKey, change_type: str, obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
        resource_version = int(obj["metadata"]["resourceVersion"])
        change = Change(resource_version, change_type, copy.deepcopy(obj), previous)
        self._events.log(key[0]).record(change)

    def _adopt(self, key: ObjectKey) -> dict[str, Any]:
        """Give an object seeded directly into kmock's store the metadata the server would have set."""
        current = self._objects[key].raw
        meta = current.get("metadata")
        if isinstance(meta, dict) and meta.get("resourceVersion"):
            return current
        meta = dict(meta or {})
        _, namespace, name = key
        meta.setdefault("name", name)
        if namespace is not None:
            meta.setdefault("namespace", namespace)
        meta.setdefault("uid", metadata.new_uid())
        meta.setdefault("creationTimestamp", metadata.now_timestamp())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(self._clock.tick())
        adopted = {**current, "metadata": meta}
        self._objects[key].history[-1] = adopted
        self._record(key, ADDED, adopted, None)
        return adopted
