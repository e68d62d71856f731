"""Behaviour datasets for steering (chapter 01), written for this course.

A behaviour is a contrast between two groups of words (pleasant vs unpleasant, hot vs cold, ...)
that can fill the slot at the end of a prompt. Each behaviour has

* **templates**: prompt frames with a ``{}`` for a subject, ending just before the slot;
* **construction pairs**: (towards, away-from) words used only to *build* the steering vector,
  read at the completion token of ``prompt + word``;
* a **scored lexicon**: two other word lists, sharing no token with the construction pairs, used
  only to *score* the behaviour: ``logsumexp(logits[towards]) - logsumexp(logits[away])`` at the
  next token of a prompt.

Templates are split whole into train / validation / test (:func:`split_templates`): the vector is
built on train templates, layer and push are chosen on validation templates, and everything
reported comes from test templates. A vector that only raised the logits of its own construction
words (the embedding and unembedding are tied in SmolLM2) would not move the scored lexicon
unless the lexicon's words happen to lie along the same direction — which is what the
unembedding baseline in the chapter measures.

Each word is a single token with a leading space for the embedded model's tokenizer
(``tests/test_steering.py`` checks it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.stats import Split, split_units


@dataclass(frozen=True)
class Item:
    """One prompt: template ``template`` (an index into the behaviour's templates) filled with a subject."""
    behaviour: str
    template: int
    prompt: str


@dataclass(frozen=True)
class Behaviour:
    name: str
    templates: tuple[str, ...]
    subjects: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]            # construction pairs: (towards, away from)
    towards: tuple[str, ...]                      # scored lexicon, disjoint from the pairs
    away: tuple[str, ...]

    def items(self, templates=None) -> list[Item]:
        """Every (template, subject) prompt, for the given template indices (default: all)."""
        chosen = range(len(self.templates)) if templates is None else templates
        prompts = [(int(t), self.templates[t].format(s)) for t in chosen for s in self.subjects]
        return [Item(self.name, t, p[0].upper() + p[1:]) for t, p in prompts]

    def construction(self, items: list[Item]) -> list[tuple[str, str]]:
        """``(prompt + towards, prompt + away)`` texts, cycling through the construction pairs."""
        return [(it.prompt + self.pairs[i % len(self.pairs)][0], it.prompt + self.pairs[i % len(self.pairs)][1])
                for i, it in enumerate(items)]

    def construction_words(self) -> tuple[set[str], set[str]]:
        return {p for p, _ in self.pairs}, {n for _, n in self.pairs}


def split_templates(behaviour: Behaviour, fractions=(0.5, 0.25, 0.25), seed: int | None = None) -> Split:
    """Template indices for train / validation / test: each template lands in exactly one set."""
    return split_units(np.arange(len(behaviour.templates)), fractions=fractions, seed=seed)


BEHAVIOURS: dict[str, Behaviour] = {b.name: b for b in [
    Behaviour(
        "sentiment",
        ("Honestly, {} was", "I thought {} was really", "Everyone agreed that {} was", "My friends said {} was",
         "In my opinion, {} was", "The review said {} was", "Looking back, {} was", "To be fair, {} was",
         "We all felt {} was", "Overall, {} was", "I have to say {} was", "According to my sister, {} was",
         "Last night {} was", "For the price, {} was", "Compared with last year, {} was", "Without a doubt, {} was"),
        ("the movie", "the food", "the hotel", "the concert", "the trip", "the book"),
        ((" great", " awful"), (" wonderful", " terrible"), (" good", " bad"), (" lovely", " horrible")),
        (" excellent", " amazing", " fantastic", " beautiful", " perfect", " brilliant", " pleasant"),
        (" poor", " dreadful", " disappointing", " boring", " ugly", " nasty", " miserable")),
    Behaviour(
        "temperature",
        ("Today the weather in {} is", "Yesterday in {} it was very", "In January, {} is usually",
         "The air in {} this morning felt", "When we landed in {} it was", "The forecast for {} says it will be",
         "Last week {} was", "The nights in {} are", "Everyone in {} says the summer is",
         "My cousin in {} told me it is", "At noon in {} it gets", "The streets of {} were",
         "This spring {} has been", "The water near {} is", "In the evening {} turns", "Our hotel room in {} was"),
        ("Madrid", "Oslo", "Cairo", "Boston", "Delhi", "Moscow"),
        ((" hot", " cold"), (" warm", " cool"), (" boiling", " freezing")),
        (" sunny", " scorching", " humid", " baking", " tropical"),
        (" icy", " snowy", " chilly", " frozen", " arctic")),
    Behaviour(
        "size",
        ("I was surprised that {} was so", "My neighbour said {} is", "Compared with ours, {} was",
         "From the street, {} looked", "Everyone noticed that {} was", "The photo shows that {} is",
         "In person, {} seemed", "The agent told us {} was", "To my eyes, {} was", "Next to the old one, {} is",
         "Our guests thought {} was", "For a family of four, {} is", "The advert said {} was",
         "Seen from above, {} looks", "Measured properly, {} is", "My aunt complained that {} was"),
        ("the house", "the dog", "the box", "the room", "the car", "the garden"),
        ((" big", " small"), (" huge", " tiny"), (" large", " little")),
        (" enormous", " giant", " massive", " vast", " spacious"),
        (" miniature", " compact", " narrow", " minuscule", " tight")),
    Behaviour(
        "french",
        ("I looked at the {}", "She walked past the {}", "We painted the {}", "They talked about the {}",
         "He cleaned the {}", "You can see the {}", "The children drew the {}", "My father repaired the {}",
         "Nobody noticed the {}", "The tourists photographed the {}", "I often think about the {}",
         "We sat near the {}", "Someone moved the {}", "The artist sketched the {}", "Everyone admired the {}",
         "The guide described the {}"),
        ("window", "garden", "table", "river", "bridge", "market"),
        ((" le", " the"), (" et", " and"), (" pour", " for"), (" dans", " in")),
        (" les", " des", " une", " est", " du", " sur"),
        (" a", " is", " with", " on", " of", " to")),
    Behaviour(
        "sport",
        ("{} spends every weekend", "On Saturdays {} goes", "Every evening {} enjoys", "{} is really into",
         "For fun, {} likes", "After work {} usually starts", "On holiday {} spent the days",
         "{} has recently taken up", "This summer {} wants to try", "Most mornings {} begins with",
         "Since school, {} has loved", "On rainy days {} still", "Whenever possible, {} chooses",
         "Every Sunday {} and I go", "In the evenings {} prefers", "Last year {} discovered"),
        ("my brother", "my sister", "my uncle", "my friend", "my neighbour", "my cousin"),
        ((" football", " cooking"), (" running", " baking"), (" tennis", " knitting")),
        (" soccer", " basketball", " swimming", " hockey", " golf", " rugby"),
        (" pasta", " bread", " recipes", " cake", " salad", " pizza")),
]}
