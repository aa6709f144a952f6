"""The six basic emotions, in the one order used everywhere (datasets, bundles, messages)."""

from edgeemo.errors import EdgeemoError

EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
# What the fused label says when no emotion model is confident. In a dataset, y == NEUTRAL_INDEX.
NEUTRAL = "neutral"
NEUTRAL_INDEX = -1


def emotion_index(name: str, where: str = "label") -> int:
    """Index of an emotion name (case-insensitive); ``neutral`` gives NEUTRAL_INDEX."""
    key = name.strip().lower()
    if key == NEUTRAL:
        return NEUTRAL_INDEX
    if key not in EMOTIONS:
        raise EdgeemoError(f"{where}: unknown emotion {name!r} (expected one of {', '.join(EMOTIONS)}, or neutral)")
    return EMOTIONS.index(key)


def emotion_name(index: int) -> str:
    return NEUTRAL if index == NEUTRAL_INDEX else EMOTIONS[index]
