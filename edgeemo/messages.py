"""The prediction message contract: what ``edgeemo serve`` publishes and any subscriber reads.

The contract, with every key, type and the version rule, is docs/contracts/messages.md; this module
builds and checks it (keep the two in step). In short: a ZeroMQ message of two frames, a UTF-8 topic
(``edgeemo.pred.<stream>`` or ``edgeemo.status.<stream>``, a stream id being 1 to 64 of ``A-Z a-z 0-9 _ -``)
and a msgpack map of plain types packed with ``use_bin_type=True``. Every payload carries ``schema``
(SCHEMA_VERSION): adding a key keeps it, renaming or removing one or changing its meaning raises it.
``unpack`` keeps keys it does not know unchecked, and refuses a schema it does not know or a malformed
message with one line naming the field.

Clocks: ``t_capture`` and ``t_publish`` are wall clock (another machine can place them); the ``latency``
durations are measured on a monotonic clock, and ``t_capture`` = ``t_publish`` - ``latency.total``.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from edgeemo.emotions import EMOTIONS, NEUTRAL
from edgeemo.errors import EdgeemoError

SCHEMA_VERSION = 1
# Where ``edgeemo serve`` publishes unless told otherwise: loopback, so nothing leaves the machine by default.
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5556"
PRED_PREFIX = "edgeemo.pred."
STATUS_PREFIX = "edgeemo.status."
# The label when no prediction was made (no face, or the ring buffer has not filled yet).
NO_PREDICTION = "none"
LABELS = (*EMOTIONS, NEUTRAL, NO_PREDICTION)
STATUS_EVENTS = ("started", "camera_lost", "reconnected", "no_face", "face_found", "end_of_stream", "shutting_down",
                 "relay_connected", "relay_lost", "relay_handshake_failed", "rest_established")
LATENCY_STAGES = ("capture", "wait", "landmarks", "classify", "publish")
LATENCY_KEYS = (*LATENCY_STAGES, "total")

_STREAM_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

_PREDICTION_FIELDS = {
    "schema": int, "kind": str, "stream": str, "seq": int, "t_capture": float, "t_publish": float,
    "face_found": bool, "scores": dict, "label": str, "landmarks": int, "k": dict, "bundle": str, "latency": dict,
}
_STATUS_FIELDS = {
    "schema": int, "kind": str, "stream": str, "seq": int, "t_publish": float, "event": str, "detail": str,
}
# Keys added after the first release: checked when present, never required (older publishers lack them).
_OPTIONAL_PREDICTION_FIELDS = {"face": int, "box": dict, "pose": dict, "pose_beyond_training": bool,
                                "calibration": dict}
CALIBRATION_MODES = ("auto", "off", "absolute")  # calibration.mode: estimating rest, switched off, no such models
CALIBRATION_HOW = ("auto", "set")  # calibration.how: found by the estimator, or set on request
_OPTIONAL_STATUS_FIELDS = {"face": int}
BOX_KEYS = ("x0", "y0", "x1", "y1")
POSE_KEYS = ("yaw", "pitch", "roll")
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "a boolean", str: "a string", dict: "a map"}


def check_stream(stream: str, where: str = "--stream") -> str:
    """Return ``stream`` if it is a valid stream id, else raise EdgeemoError naming ``where``."""
    if not isinstance(stream, str) or not _STREAM_RE.fullmatch(stream):
        raise EdgeemoError(f"{where} {stream!r}: a stream id is 1 to 64 of A-Z a-z 0-9 _ -")
    return stream


def prediction_topic(stream: str) -> str:
    return PRED_PREFIX + check_stream(stream)


def status_topic(stream: str) -> str:
    return STATUS_PREFIX + check_stream(stream)


def build_prediction(
    *, stream: str, seq: int, t_capture: float, t_publish: float, face_found: bool,
    scores: Mapping[str, float] | Sequence[float], label: str, landmarks: int, k: Mapping[str, int],
    bundle: str, latency: Mapping[str, float], face: int | None = None,
    box: Mapping[str, float] | Sequence[float] | None = None, pose: Mapping[str, float] | None = None,
    pose_beyond_training: bool | None = None, explanation: Mapping[str, Any] | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A prediction payload, checked as ``unpack`` checks it. ``scores`` is a map by emotion or six numbers
    in EMOTIONS order (a numpy array is fine); numbers become Python types, which msgpack needs. ``box`` is
    a map or four numbers x0, y0, x1, y1; ``face``, ``box``, ``pose`` and ``pose_beyond_training`` are left
    out when None."""
    if not isinstance(scores, Mapping):
        if len(scores) != len(EMOTIONS):
            raise EdgeemoError(f"prediction field 'scores': expected six numbers, got {len(scores)}")
        # tolist() turns a numpy array's items into Python floats in one call.
        scores = dict(zip(EMOTIONS, scores.tolist() if hasattr(scores, "tolist") else scores))
    if label not in LABELS:
        raise EdgeemoError(f"prediction field 'label': {label!r} is not one of {', '.join(LABELS)}")
    message = {
        "schema": SCHEMA_VERSION, "kind": "prediction", "stream": stream, "seq": int(seq),
        "t_capture": float(t_capture), "t_publish": float(t_publish), "face_found": bool(face_found),
        "scores": scores, "label": label, "landmarks": int(landmarks), "k": k,
        "bundle": str(bundle), "latency": latency,
    }
    if face is not None:
        message["face"] = int(face)
    if box is not None:
        if not isinstance(box, Mapping):
            box = dict(zip(BOX_KEYS, box.tolist() if hasattr(box, "tolist") else box))
        message["box"] = box
    if pose is not None:
        message["pose"] = pose
    if pose_beyond_training is not None:
        message["pose_beyond_training"] = bool(pose_beyond_training)
    if explanation is not None:
        message["explanation"] = dict(explanation)
    if calibration is not None:
        message["calibration"] = dict(calibration)
    _check_maps(message)
    return message


def build_status(*, stream: str, seq: int, t_publish: float, event: str, detail: str = "",
                 face: int | None = None) -> dict[str, Any]:
    if event not in STATUS_EVENTS:
        raise EdgeemoError(f"status field 'event': {event!r} is not one of {', '.join(STATUS_EVENTS)}")
    message = {
        "schema": SCHEMA_VERSION, "kind": "status", "stream": stream, "seq": int(seq),
        "t_publish": float(t_publish), "event": event, "detail": str(detail),
    }
    if face is not None:
        message["face"] = int(face)
    return message


def pack(payload: Mapping[str, Any]) -> bytes:
    return msgpack.packb(payload, use_bin_type=True)


def unpack(topic: bytes | str, payload: bytes) -> dict[str, Any]:
    """Decode and check one message; a malformed one raises EdgeemoError naming the field at fault.

    Keys this reader does not know are kept and not checked (newer publishers may add them)."""
    if isinstance(topic, bytes):
        try:
            topic = topic.decode("utf-8")
        except UnicodeDecodeError:
            raise EdgeemoError(f"topic {topic[:80]!r}: not UTF-8") from None
    if topic.startswith(PRED_PREFIX):
        kind, fields, stream = "prediction", _PREDICTION_FIELDS, topic[len(PRED_PREFIX):]
    elif topic.startswith(STATUS_PREFIX):
        kind, fields, stream = "status", _STATUS_FIELDS, topic[len(STATUS_PREFIX):]
    else:
        raise EdgeemoError(f"topic {topic[:80]!r}: not an edgeemo topic ({PRED_PREFIX}* or {STATUS_PREFIX}*)")
    check_stream(stream, where="topic stream")
    try:
        message = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise EdgeemoError(f"{kind} message on {topic}: payload is not one msgpack map ({exc})") from None
    if not isinstance(message, dict):
        raise EdgeemoError(f"{kind} message on {topic}: payload is a {type(message).__name__}, not a map")
    for key, expected in fields.items():
        _check_type(message, key, expected, kind)
    for key, expected in (_OPTIONAL_STATUS_FIELDS if kind == "status" else _OPTIONAL_PREDICTION_FIELDS).items():
        if key in message:
            _check_type(message, key, expected, kind)
    if message["schema"] != SCHEMA_VERSION:
        newer = ": upgrade edgeemo" if message["schema"] > SCHEMA_VERSION else ""
        raise EdgeemoError(
            f"{kind} field 'schema': version {message['schema']}, this reader knows {SCHEMA_VERSION}{newer}"
        )
    if message["kind"] != kind:
        raise EdgeemoError(f"{kind} field 'kind': {message['kind']!r} on topic {topic}")
    if message["stream"] != stream:
        raise EdgeemoError(f"{kind} field 'stream': {message['stream']!r} but the topic is {topic}")
    if message["seq"] < 0:
        raise EdgeemoError(f"{kind} field 'seq': {message['seq']} is negative")
    if message.get("face", 0) < 0:
        raise EdgeemoError(f"{kind} field 'face': {message['face']} is negative")
    if kind == "status":
        # A newer publisher may add events (as the relay_ ones were added): accept any string, as for keys.
        if not message["event"]:
            raise EdgeemoError("status field 'event': empty")
        return message
    if message["label"] not in LABELS:
        raise EdgeemoError(f"prediction field 'label': {message['label']!r} is not one of {', '.join(LABELS)}")
    _check_maps(message)
    return message


def _check_type(message: dict, key: str, expected: type, kind: str) -> None:
    if key not in message:
        raise EdgeemoError(f"{kind} field {key!r}: missing")
    value = message[key]
    # bool is an int in Python but not in msgpack; another language's encoder may write 1.0 as int 1.
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        message[key] = float(value)
    elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise EdgeemoError(f"{kind} field {key!r}: expected {_TYPE_NAMES[expected]}, got {type(value).__name__}")


def _check_maps(message: dict) -> None:
    """Replace the prediction's number maps by their checked, ordered copies."""
    message["scores"] = _number_map(message["scores"], "scores", EMOTIONS, float)
    message["k"] = _number_map(message["k"], "k", EMOTIONS, int)
    message["latency"] = _number_map(message["latency"], "latency", LATENCY_KEYS, float)
    if "box" in message:
        message["box"] = _number_map(message["box"], "box", BOX_KEYS, float)
    if "pose" in message:
        message["pose"] = _number_map(message["pose"], "pose", POSE_KEYS, float)
    if "explanation" in message:
        _check_explanation(message["explanation"])
    if "calibration" in message:
        _check_calibration(message["calibration"])


def _check_calibration(calibration: dict) -> None:
    """The optional ``calibration`` map: mode, calibrated, frames, age_s and (once calibrated) how."""
    where = "prediction field 'calibration"
    if calibration.get("mode") not in CALIBRATION_MODES:
        raise EdgeemoError(f"{where}.mode': {calibration.get('mode')!r} is not one of {', '.join(CALIBRATION_MODES)}")
    if not isinstance(calibration.get("calibrated"), bool):
        raise EdgeemoError(f"{where}.calibrated': expected a boolean")
    calibration.update(_number_map(calibration, "calibration", ("frames",), int))
    calibration.update(_number_map(calibration, "calibration", ("age_s",), float))
    if calibration["calibrated"] and calibration.get("how") not in CALIBRATION_HOW:
        raise EdgeemoError(f"{where}.how': {calibration.get('how')!r} is not one of {', '.join(CALIBRATION_HOW)}")


_EXPLANATION_NUMBERS = ("score", "baseline_score", "residual")


def _check_explanation(explanation: object) -> None:
    """The optional ``explanation`` map, checked in place (numbers made plain floats, for msgpack)."""
    if not isinstance(explanation, dict):
        raise EdgeemoError(f"prediction field 'explanation': expected a map, got {type(explanation).__name__}")
    if explanation.get("emotion") not in EMOTIONS:
        raise EdgeemoError(f"prediction field 'explanation.emotion': {explanation.get('emotion')!r} is not an emotion")
    if not isinstance(explanation.get("baseline"), str):
        raise EdgeemoError("prediction field 'explanation.baseline': expected a string")
    names = _EXPLANATION_NUMBERS + (("seconds",) if "seconds" in explanation else ())
    explanation.update(_number_map(explanation, "explanation", names, float))
    for key in ("regions", "landmarks"):
        if key == "landmarks" and key not in explanation:
            continue  # optional
        value = explanation.get(key)
        if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
            raise EdgeemoError(f"prediction field 'explanation.{key}': expected a map from names to numbers")
        explanation[key] = _number_map(value, f"explanation.{key}", tuple(value), float)


def _number_map(value: Mapping, key: str, keys: Sequence[str], number: type) -> dict[str, Any]:
    """``keys`` of ``value``, in that order, as finite numbers of type ``number``; other keys are left out."""
    result = {}
    for name in keys:
        if name not in value:
            raise EdgeemoError(f"prediction field '{key}.{name}': missing")
        item = value[name]
        if type(item) is not number:  # the exact type is the common case, and the fast one
            # numpy numbers are welcome from the publisher; bool is an int in Python but not in msgpack.
            if isinstance(item, bool) or not isinstance(item, numbers.Integral if number is int else numbers.Real):
                raise EdgeemoError(f"prediction field '{key}.{name}': expected {_TYPE_NAMES[number]}, got {item!r}")
            item = number(item)
        if number is float and not math.isfinite(item):
            raise EdgeemoError(f"prediction field '{key}.{name}': {item} is not finite")
        result[name] = item
    return result
