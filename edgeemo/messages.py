"""The prediction message contract: what ``edgeemo serve`` publishes and any subscriber reads.

Every message is a ZeroMQ multipart message of two frames: a UTF-8 topic, then a msgpack map packed
with ``use_bin_type=True``. Payloads use plain msgpack types only (str, int, float, bool, map, array),
so any language's msgpack library reads them. Subscribe by topic prefix: ``edgeemo.pred.`` for every
stream's predictions, ``edgeemo.status.`` for status, or ``edgeemo.`` for both. A prefix also matches
longer stream names (``edgeemo.pred.cam`` matches ``cam2``), so compare the ``stream`` field when it matters.

Topics: ``edgeemo.pred.<stream>`` and ``edgeemo.status.<stream>``; a stream id is 1 to 64 characters
from ``A-Z a-z 0-9 _ -`` (no dots, so a topic splits unambiguously).

Prediction payload (topic ``edgeemo.pred.<stream>``), one per face per processed frame (faces in view whose
window has filled), each face with its own id, window and predictions:

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
| `face` | int | the face's id in this stream: from 0, the same while the face stays in view, never reused |
| `box` | map str -> float | the face's extent, 0 to 1 of the image's width and height: `x0`, `y0`, `x1`, `y1` |
| `pose` | map str -> float | head pose, degrees from looking into the camera: `yaw`, `pitch`, `roll` (below) |
| `pose_beyond_training` | bool | turned further than the training data's poses: a judgement to trust less |

`face`, `box`, `pose` and `pose_beyond_training` came with several faces per stream; older publishers do
not send them, and readers must not need them. `pose` and `pose_beyond_training` are absent when no pose
could be fitted. `yaw` > 0: the nose turns to the image's left; `pitch` > 0: down; `roll` > 0: clockwise in
the image (edgeemo.head_pose).

Emotion keys, in this order: `anger`, `disgust`, `fear`, `happiness`, `sadness`, `surprise`.

| `latency` key | seconds spent |
|---|---|
| `capture` | in the source's read: waiting for the frame and decoding it (before `t_capture`) |
| `wait` | waiting from capture until processing started (a newer frame would have replaced it) |
| `landmarks` | finding the frame's face meshes, normalising them and telling the faces apart (shared by its faces) |
| `classify` | running the six models on this face's window |
| `publish` | the rest: the frame's faces before this one, fusing the label, the head pose, the message |
| `total` | from capture to the stamp: `wait` + `landmarks` + `classify` + `publish` |

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
| `face` | int | on `face_found` and `no_face` for one face: the face's id (absent on stream events) |

`face_found` with `face`: a face came into view and starts its window; `no_face` with `face`: that face has
been gone longer than the face gap, and its window ends (back later, it is a new face with a new id).
`no_face` without `face`: the stream has shown no face since it started.

A `seq` smaller than the last one seen means the publisher restarted.

Clocks: timestamps are wall clock so that another machine can place them (and, with synchronised
clocks, measure transport delay as its own ``time.time() - t_publish``); durations are measured with a
monotonic clock, which wall-clock adjustments cannot distort, and ``t_capture`` is derived from them.

Versions: readers ignore keys they do not know, so adding a key keeps ``schema`` 1; renaming or
removing one, or changing its meaning, raises it, and readers refuse a schema they do not know.
Several faces per stream kept schema 1: no key changed its meaning (`scores` and `label` were always those
of one face, then the one MediaPipe picked; now of the face `face` names), a stream with one face in view
sends what it sent before, and a bump would have made every schema-1 reader refuse every stream, most of
which see one person. What is new, several predictions per frame, is told by the new `face` key: a
reader that may see several people should group by it (docs/multi-face.md).
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
# Keys added after the first release: checked when present, never required (older publishers lack them).
_OPTIONAL_PREDICTION_FIELDS = {"face": int, "box": dict, "pose": dict, "pose_beyond_training": bool}
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
    pose_beyond_training: bool | None = None,
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
    if "box" in message:
        message["box"] = _number_map(message["box"], "box", BOX_KEYS, float)
    if "pose" in message:
        message["pose"] = _number_map(message["pose"], "pose", POSE_KEYS, float)


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
