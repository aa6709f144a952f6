"""Where the synthetic action units come from: ``edgeemo data synth --action-units hand|ict``.

``hand`` (the default): the fitted smile and hand-set fields (``offline.synth.action_units``). ``ict``: the
fitted smile and ICT FaceKit's captured blendshapes for every other unit, with half the people drawn from
ICT's identity model (``offline.synth.ict``). The default stays ``hand``: bundles trained on ``ict`` did worse
on real faces, two seeds (docs/action-units.md).
"""

from __future__ import annotations

from edgeemo.errors import EdgeemoError
from offline.synth.action_units import ActionUnitFields, action_unit_fields
from offline.synth.ict import ict_action_unit_fields

UNIT_SOURCES = ("hand", "ict")


def check_source(source: str) -> None:
    if source not in UNIT_SOURCES:
        raise EdgeemoError(f"--action-units: expected one of {', '.join(UNIT_SOURCES)}, got {source!r}")


def unit_fields(source: str = "hand") -> ActionUnitFields:
    check_source(source)
    return ict_action_unit_fields() if source == "ict" else action_unit_fields()
