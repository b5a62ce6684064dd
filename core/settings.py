"""Compare the settings a kept folder was made with against the ones asked for now.

Resumable jobs (policy training, the demo, the memory benchmark) keep their settings as JSON beside their
results; continuing with other settings would mix two experiments, so each refuses and names the fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def as_saved(settings: Any) -> Any:
    """``settings`` in the form it reads back from JSON (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(settings))


def settings_differences(
    saved: Mapping[str, Any],
    wanted: Mapping[str, Any],
    *,
    may_change: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Each wanted field whose saved value differs, as ``"field: saved there, wanted here"``.

    ``may_change`` names fields a continued job may change; ``defaults`` fill fields a folder saved before
    they existed (else a missing field counts as a difference). Saved fields the settings no longer have
    are ignored: nothing reads them.
    """
    saved, wanted, defaults = as_saved(dict(saved)), as_saved(dict(wanted)), as_saved(dict(defaults or {}))
    skip = set(may_change)
    missing = object()
    differences = []
    for field in sorted(wanted):
        if field in skip:
            continue
        before, now = saved.get(field, defaults.get(field, missing)), wanted[field]
        if before != now:
            shown = "(not set)" if before is missing else repr(before)
            differences.append(f"{field}: {shown} there, {now!r} here")
    return differences
