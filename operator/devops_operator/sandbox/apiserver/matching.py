"""Which kmock reaction serves a request, decided for that one request.

kmock decides by asking whether the request is `in` each reaction's view, which re-filters the
whole request log every time: each request then costs more than the one before (91% of the
server's time after a few hundred requests). Walking the view chain for just this request gives
the same answer in constant time; views whose answer depends on the log itself (slices,
streams, a reaction's own served requests) still ask kmock.
"""

from __future__ import annotations

import kmock


def view_has(view: kmock.View, request: kmock.Request) -> bool:
    """Whether `request` belongs to `view`, as kmock's `request in view` would answer."""
    match view:
        case kmock.Slicer() | kmock.Stream() | kmock.Reaction():
            return request in view  # positional or stateful: only the log can tell
        case kmock.Filter():
            return view_has(view._source, request) and bool(view.criteria(request))
        case kmock.Exclusion():
            return view_has(view._source, request) and not any(
                view_has(excluded, request) for excluded in view._exclusions
            )
        case kmock.OrGroup():
            return any(view_has(source, request) for source in view._sources)
        case kmock.AndGroup():
            return all(view_has(source, request) for source in view._sources)
        case kmock.Chained():  # Priority and other pass-through links
            return view_has(view._source, request)
        case kmock.Root():
            return True  # every request the server is handling arrived at its root
        case _:
            return request in view


def spent(view: kmock.View) -> bool:
    """Whether a reaction's view can match no request from now on: its chain holds a slice (such as
    `["patch /x"][1:2]`, "the second patch only") whose source already has more requests than the
    slice's end, and positions only grow. kmock keeps asking such a reaction (and re-filters the whole
    request log to answer) for every request the server ever gets; a spent one is better disabled.

    Only the chain every request must pass through is followed (not an OR group's branches nor an
    exclusion's excluded views), and only a plain forward slice with an end is judged.
    """
    while True:
        match view:
            case kmock.Slicer():
                step, start, stop = view.s.step or 1, view.s.start or 0, view.s.stop
                forward = step > 0 and start >= 0 and stop is not None and stop >= 0
                if forward and sum(1 for _ in view._source) > stop:  # the source holds this request already
                    return True
                view = view._source
            case kmock.Stream() | kmock.Reaction():
                return False
            case kmock.Chained():  # Filter, Exclusion (its source), Priority
                view = view._source
            case _:
                return False


def serving_order(reactions: list[kmock.Reaction]) -> list[kmock.Reaction]:
    """Highest priority first; mixed-depth priorities compared as if padded with zeros (kmock's rule)."""
    depth = max((len(r.priorities) for r in reactions), default=0)

    def key(reaction: kmock.Reaction) -> tuple[float, ...]:
        padded = tuple(reaction.priorities) + (0.0,) * (depth - len(reaction.priorities))
        return tuple(-p for p in padded)

    return sorted(reactions, key=key)
