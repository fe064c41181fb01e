"""Did-you-mean hints for misspelt config keys. Pure."""

from __future__ import annotations

import difflib
import typing
from typing import Any


def close_key(root: Any, loc: tuple) -> str:
    """``: did you mean 'policy'?`` for a misspelt key at ``loc`` (a pydantic error's
    location), from the fields of the table it sits in (``root`` is the config model)."""
    model: Any = root
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return ""
        if part not in fields:
            continue  # a dict's key (a knob name under [proposer.knobs.space])
        ann = fields[part].annotation
        model = ann if hasattr(ann, "model_fields") else next(
            (a for a in typing.get_args(ann) if hasattr(a, "model_fields")), None)
        if model is None:
            return ""
    close = difflib.get_close_matches(str(loc[-1]), list(getattr(model, "model_fields", {})), 1, 0.6)
    return f": did you mean '{close[0]}'?" if close else ""
