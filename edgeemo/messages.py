"""The prediction message contract: what ``edgeemo serve`` publishes and any subscriber reads.

Every message is a ZeroMQ multipart message of two frames: a UTF-8 topic, then a msgpack map packed
with ``use_bin_type=True``. Payloads use plain msgpack types only (str, int, float, bool, map, array),
so any language's msgpack library reads them. Subscribe by topic prefix: ``edgeemo.pred.`` for every
stream's predictions, ``edgeemo.status.`` for status, or ``edgeemo.`` for both. A prefix also matches
longer stream names (``edgeemo.pred.cam`` matches ``cam2``), so compare the ``stream`` field when it matters.

Topics: ``edgeemo.pred.<stream>`` and ``edgeemo.status.<stream>``; a stream id is 1 to 64 characters
from ``A-Z a-z 0-9 _ -`` (no dots, so a topic splits unambiguously).

Prediction payload (topic ``edgeemo.pred.<stream>``), one per processed frame:

| key | msgpack type | meaning |
|---|---|---|
| `schema` | int | 1 (see "Versions" below) |
| `kind` | str | `"prediction"` |
| `stream` | str | the stream id, as in the topic |
| `seq` | int | from 0 at publisher start, +1 per message of this stream and kind (a gap: messages missed) |
| `t_capture` | float | wall clock, Unix seconds, when the frame was captured (= `t_publish` - `latency.total`) |
| `t_publish` | float | wall clock, Unix seconds (`time.time()`), when the message was stamped |
| `face_found` | bool | whether a face was found in this frame |
| `scores` | map str -> float | each emotion model's probability (0 to 1), in the order below; 0.0 if no prediction |
| `label` | str | an emotion, `"neutral"` (no model confident) or `"none"` (no face, or too few frames yet) |
| `landmarks` | int | how many landmarks the model bundle reads (L) |
| `k` | map str -> int | per emotion, how many landmarks its model uses (K) |
| `bundle` | str | the model bundle id |
| `latency` | map str -> float | seconds per stage, measured in-process on a monotonic clock (next table) |
| `explanation` | map | optional (``serve --explain``): why the top emotion scored as it did (next-but-one table) |

Emotion keys, in this order: `anger`, `disgust`, `fear`, `happiness`, `sadness`, `surprise`.

| `latency` key | seconds spent |
|---|---|
| `capture` | in the source's read: waiting for the frame and decoding it (before `t_capture`) |
| `wait` | waiting from capture until processing started (a newer frame would have replaced it) |
| `landmarks` | finding the face mesh and selecting the landmarks |
| `classify` | running the six models |
| `publish` | from the models' output to the stamp: fusing the label and building the message |
| `total` | from capture to the stamp: `wait` + `landmarks` + `classify` + `publish` |

`explanation` (optional; full description in docs/explanations.md): exact Shapley values over face regions
of one emotion's score, relative to a baseline face; the regions add up to `score - baseline_score - residual`.

| `explanation` key | msgpack type | meaning |
|---|---|---|
| `emotion` | str | the emotion explained (the top score's, or ``--explain-emotion``'s) |
| `baseline` | str | `canonical_rest` (the canonical neutral face) or `personal_rest` (the person's resting face) |
| `score` | float | the emotion's published score, F(x) |
| `baseline_score` | float | its score on the baseline face held still, F(b) |
| `residual` | float | `score - baseline_score - sum(regions)`: float error only (exact Shapley values are complete) |
| `regions` | map str -> float | each region's share of `score - baseline_score` (edgeemo.regions.REGIONS the bundle reads) |
| `landmarks` | map str -> float | optional: the largest landmark shares, by mesh index (an approximation, see the docs) |
| `seconds` | float | time spent explaining (not part of `latency`) |

Status payload (topic ``edgeemo.status.<stream>``), on events:

| key | msgpack type | meaning |
|---|---|---|
| `schema` | int | 1 |
| `kind` | str | `"status"` |
| `stream` | str | the stream id, as in the topic |
| `seq` | int | as for predictions, counted separately |
| `t_publish` | float | wall clock, Unix seconds, when the message was stamped |
| `event` | str | `started`, `camera_lost`, `reconnected`, `no_face`, `face_found`, `end_of_stream` or `shutting_down` |
| `detail` | str | human-readable detail, may be empty |

A `seq` smaller than the last one seen means the publisher restarted.

Clocks: timestamps are wall clock so that another machine can place them (and, with synchronised
clocks, measure transport delay as its own ``time.time() - t_publish``); durations are measured with a
monotonic clock, which wall-clock adjustments cannot distort, and ``t_capture`` is derived from them.

Versions: readers ignore keys they do not know, so adding a key keeps ``schema`` 1; renaming or
removing one, or changing its meaning, raises it, and readers refuse a schema they do not know.
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
STATUS_EVENTS = ("started", "camera_lost", "reconnected", "no_face", "face_found", "end_of_stream", "shutting_down")
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
    bundle: str, latency: Mapping[str, float], explanation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A prediction payload, checked as ``unpack`` checks it. ``scores`` is a map by emotion or six numbers
    in EMOTIONS order (a numpy array is fine); numbers become Python types, which msgpack needs."""
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
    if explanation is not None:
        message["explanation"] = dict(explanation)
    _check_maps(message)
    return message


def build_status(*, stream: str, seq: int, t_publish: float, event: str, detail: str = "") -> dict[str, Any]:
    if event not in STATUS_EVENTS:
        raise EdgeemoError(f"status field 'event': {event!r} is not one of {', '.join(STATUS_EVENTS)}")
    return {
        "schema": SCHEMA_VERSION, "kind": "status", "stream": stream, "seq": int(seq),
        "t_publish": float(t_publish), "event": event, "detail": str(detail),
    }


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
    if kind == "status":
        if message["event"] not in STATUS_EVENTS:
            raise EdgeemoError(f"status field 'event': {message['event']!r} is not one of {', '.join(STATUS_EVENTS)}")
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
    if "explanation" in message:
        _check_explanation(message["explanation"])


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
