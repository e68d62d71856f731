"""Templated behaviour datasets for steering (chapter 01), written for this course.

Each dataset is a list of :class:`Item`: a prompt and two single-token completions, the
behaviour we steer *towards* (``positive``) and *away from* (``negative``). The behaviour
score of a prompt is ``logit(positive) - logit(negative)`` at the next token.
Contrastive (CAA-style) training activations are read at the completion token of
``prompt + positive`` and ``prompt + negative``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    prompt: str
    positive: str
    negative: str


_SUBJECTS = ["The movie", "The food", "The hotel", "The concert", "The book", "The game", "The service",
             "The weather", "The party", "The trip", "The show", "The coffee", "The class", "The car", "The song",
             "The view", "The museum", "The lecture", "The beach", "The meal", "The flight", "The play", "The room",
             "The match"]
_RECIPIENTS = ["manager", "professor", "landlord", "director", "committee", "bank", "council", "editor", "doctor",
               "ambassador", "principal", "judge", "minister", "senator", "officer", "client", "board", "dean",
               "mayor", "inspector", "governor", "chairman", "registrar", "secretary"]
_OBJECTS = ["window", "garden", "table", "river", "mountain", "letter", "station", "kitchen", "bridge", "forest",
            "market", "church", "school", "painting", "bottle", "village", "castle", "picture", "door", "street",
            "lamp", "ocean", "island", "library"]
_PEOPLE = ["My brother", "My sister", "My friend", "My uncle", "My aunt", "My neighbour", "My father", "My mother",
           "My cousin", "My boss", "My teacher", "My son", "My daughter", "My colleague", "My grandmother",
           "My grandfather", "My partner", "My roommate", "My coach", "My doctor", "My husband", "My wife",
           "My nephew", "My niece"]
_CLAIMS = ["the sky blue", "water wet", "fire hot", "snow cold", "sugar sweet", "the sun bright", "ice frozen",
           "grass green", "the sea salty", "a lemon sour", "a rock hard", "a feather light", "the night dark",
           "honey sticky", "a knife sharp", "a desert dry", "glass fragile", "a mountain tall", "a mouse small",
           "an elephant big", "lava hot", "rain wet", "coal black", "milk white"]

_PAIRS = {  # (towards, away from): several word pairs per behaviour, so pair differences are not all one token's
    "sentiment": [(" great", " awful"), (" wonderful", " terrible"), (" good", " bad"), (" lovely", " horrible"),
                  (" excellent", " poor"), (" fantastic", " dreadful")],
    "formality": [(" Dear", " Hey"), (" Sir", " Hi"), (" Dear", " Hello")],
    "french": [(" le", " the"), (" et", " and"), (" pour", " for"), (" dans", " in"), (" sur", " on"), (" la", " a")],
    "topic": [(" playing", " cooking"), (" running", " baking"), (" swimming", " cleaning"), (" cycling", " knitting"),
              (" climbing", " painting"), (" training", " gardening")],
    "agreement": [(" Yes", " No"), (" yes", " no"), (" True", " False"), (" Correct", " Wrong")],
}
_PROMPTS = {
    "sentiment": [f"{s} was" for s in _SUBJECTS],
    "formality": [f"I wrote to the {r} and began with" for r in _RECIPIENTS],
    "french": [f"I looked at the {o}" for o in _OBJECTS],
    "topic": [f"{p} spends every weekend" for p in _PEOPLE],
    "agreement": [f"Question: Is {c}? Answer:" for c in _CLAIMS],
}
DATASETS: dict[str, list[Item]] = {
    name: [Item(prompt, *_PAIRS[name][i % len(_PAIRS[name])]) for i, prompt in enumerate(prompts)]
    for name, prompts in _PROMPTS.items()
}


def split(items: list[Item], n_train: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Shuffle with ``seed`` and split into disjoint train and test prompts."""
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n_train], shuffled[n_train:]
