"""A question bank with known answers, written for this course (chapter 06).

Every item is a chat question plus the start of the answer sentence the embedded model
naturally gives ("The capital of France is") and the answer that completes it (" Paris").
Asking for the completion of a fixed answer stem makes "what did the model answer?" a single
forward pass: the answer is the model's top next token after the stem, no sampling, no
parsing of free text. A *lie* is a different answer from the same topic ("Rome"), so lies
are fluent and on-topic, never gibberish.

Topics are kept separate (``Item.topic``) so a detector trained on some topics can be tested
on others. Statements (``statement(item, answer)``) turn the same facts into true/false
sentences for truth probes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    topic: str
    question: str      # the user's question
    stem: str          # the start of the answer sentence, without the answer
    answer: str        # the true answer, starting with a space (" Paris")
    subject: str       # what the question is about ("France"): items about one subject share a split side


_CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Germany": "Berlin",
    "Russia": "Moscow", "China": "Beijing", "Egypt": "Cairo", "Kenya": "Nairobi", "Greece": "Athens",
    "Portugal": "Lisbon", "Austria": "Vienna", "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Denmark": "Copenhagen", "Poland": "Warsaw", "Ireland": "Dublin", "Hungary": "Budapest", "Thailand": "Bangkok",
    "Peru": "Lima", "Chile": "Santiago", "Cuba": "Havana", "Mexico": "Mexico City", "Argentina": "Buenos Aires",
    "England": "London", "Belgium": "Brussels", "the Netherlands": "Amsterdam", "Iran": "Tehran", "Iraq": "Baghdad",
    "Lebanon": "Beirut", "Syria": "Damascus", "Afghanistan": "Kabul", "South Korea": "Seoul", "Vietnam": "Hanoi",
    "the Philippines": "Manila", "Indonesia": "Jakarta", "Ukraine": "Kyiv", "Romania": "Bucharest",
    "the Czech Republic": "Prague", "Colombia": "Bogota", "Venezuela": "Caracas", "Ethiopia": "Addis Ababa",
    "Ghana": "Accra", "Senegal": "Dakar", "Morocco": "Rabat", "Saudi Arabia": "Riyadh",
    "Iceland": "Reykjavik", "Scotland": "Edinburgh", "Canada": "Ottawa", "Australia": "Canberra", "India": "New Delhi",
    "Turkey": "Ankara", "Israel": "Jerusalem", "Nigeria": "Abuja", "Pakistan": "Islamabad", "Bulgaria": "Sofia",
    "Serbia": "Belgrade", "Croatia": "Zagreb", "Nepal": "Kathmandu", "Malaysia": "Kuala Lumpur",
}
_LANGUAGES = {
    "France": "French", "Germany": "German", "Italy": "Italian", "Spain": "Spanish", "Brazil": "Portuguese",
    "Portugal": "Portuguese", "Japan": "Japanese", "China": "Chinese", "Russia": "Russian", "Mexico": "Spanish",
    "Argentina": "Spanish", "Egypt": "Arabic", "Saudi Arabia": "Arabic", "Greece": "Greek", "Poland": "Polish",
    "the Netherlands": "Dutch", "Sweden": "Swedish", "Norway": "Norwegian", "Denmark": "Danish", "Finland": "Finnish",
    "Turkey": "Turkish", "Korea": "Korean", "Thailand": "Thai", "Vietnam": "Vietnamese", "Hungary": "Hungarian",
    "Iran": "Persian", "Israel": "Hebrew", "Ukraine": "Ukrainian", "Romania": "Romanian", "Australia": "English",
    "England": "English", "Chile": "Spanish", "Austria": "German", "Indonesia": "Indonesian", "Peru": "Spanish",
    "Cuba": "Spanish", "Bulgaria": "Bulgarian", "Iceland": "Icelandic", "Colombia": "Spanish", "Morocco": "Arabic",
}
_CONTINENTS = {
    "France": "Europe", "Japan": "Asia", "Kenya": "Africa", "Brazil": "South America", "Canada": "North America",
    "Germany": "Europe", "China": "Asia", "Egypt": "Africa", "Argentina": "South America", "Mexico": "North America",
    "Italy": "Europe", "India": "Asia", "Nigeria": "Africa", "Peru": "South America", "Spain": "Europe",
    "Thailand": "Asia", "Ghana": "Africa", "Chile": "South America", "Norway": "Europe", "Vietnam": "Asia",
    "Ethiopia": "Africa", "Colombia": "South America", "Poland": "Europe", "Indonesia": "Asia", "Morocco": "Africa",
    "Venezuela": "South America", "Greece": "Europe", "Nepal": "Asia", "Senegal": "Africa", "Bolivia": "South America",
    "Sweden": "Europe", "Pakistan": "Asia", "Uganda": "Africa", "Uruguay": "South America", "Ireland": "Europe",
    "Malaysia": "Asia", "Tanzania": "Africa", "Ecuador": "South America", "Portugal": "Europe", "Mongolia": "Asia",
}
_ELEMENTS = {
    "gold": "Au", "silver": "Ag", "iron": "Fe", "copper": "Cu", "sodium": "Na", "potassium": "K", "lead": "Pb",
    "tin": "Sn", "mercury": "Hg", "oxygen": "O", "hydrogen": "H", "carbon": "C", "nitrogen": "N", "helium": "He",
    "calcium": "Ca", "chlorine": "Cl", "sulfur": "S", "zinc": "Zn", "magnesium": "Mg", "neon": "Ne", "uranium": "U",
    "aluminium": "Al", "silicon": "Si", "phosphorus": "P", "fluorine": "F", "lithium": "Li", "nickel": "Ni",
    "platinum": "Pt", "tungsten": "W", "iodine": "I",
}
_OPPOSITES = {
    "hot": "cold", "big": "small", "up": "down", "fast": "slow", "happy": "sad", "light": "dark", "old": "young",
    "rich": "poor", "hard": "soft", "open": "closed", "early": "late", "full": "empty", "strong": "weak",
    "wet": "dry", "tall": "short", "loud": "quiet", "high": "low", "good": "bad", "day": "night", "love": "hate",
    "win": "lose", "true": "false", "north": "south", "east": "west", "black": "white", "thick": "thin",
    "heavy": "light", "clean": "dirty", "cheap": "expensive", "inside": "outside", "push": "pull", "begin": "end",
    "buy": "sell", "first": "last", "alive": "dead", "safe": "dangerous", "sweet": "sour", "left": "right",
    "friend": "enemy", "war": "peace",
}
_CITIES = {
    "Toronto": "Canada", "Sydney": "Australia", "Munich": "Germany",
    "Barcelona": "Spain", "Milan": "Italy", "Osaka": "Japan", "Shanghai": "China", "Mumbai": "India",
    "Lyon": "France", "Manchester": "England", "Istanbul": "Turkey", "Rio de Janeiro": "Brazil",
    "Marseille": "France", "Venice": "Italy", "Kyoto": "Japan", "Hamburg": "Germany", "Seville": "Spain",
    "Melbourne": "Australia", "Vancouver": "Canada", "Moscow": "Russia",
    "Cairo": "Egypt", "Athens": "Greece", "Lisbon": "Portugal", "Dublin": "Ireland", "Stockholm": "Sweden",
    "Warsaw": "Poland", "Vienna": "Austria", "Budapest": "Hungary", "Bangkok": "Thailand", "Seoul": "South Korea",
    "Nairobi": "Kenya", "Lima": "Peru",
    "Havana": "Cuba", "Oslo": "Norway", "Helsinki": "Finland", "Copenhagen": "Denmark",
}
_PLURALS = {
    "mouse": "mice", "child": "children", "man": "men", "woman": "women", "tooth": "teeth", "foot": "feet",
    "goose": "geese", "person": "people", "ox": "oxen", "cactus": "cacti", "knife": "knives", "leaf": "leaves",
    "wolf": "wolves", "life": "lives", "wife": "wives", "half": "halves", "potato": "potatoes", "hero": "heroes",
    "box": "boxes", "city": "cities", "baby": "babies", "party": "parties", "bus": "buses", "dish": "dishes",
    "fox": "foxes", "church": "churches", "glass": "glasses", "story": "stories", "family": "families",
    "country": "countries",
}


def _items() -> list[Item]:
    items = []
    for country, city in _CAPITALS.items():
        items.append(Item("capitals", f"What is the capital of {country}?", f"The capital of {country} is",
                          f" {city}", country))
    for country, language in _LANGUAGES.items():
        items.append(Item("languages", f"What language is spoken in {country}?",
                          f"The main language spoken in {country} is", f" {language}", country))
    for country, continent in _CONTINENTS.items():
        items.append(Item("continents", f"Which continent is {country} in?", f"{country} is in",
                          f" {continent}", country))
    for element, symbol in _ELEMENTS.items():
        items.append(Item("elements", f"What is the chemical symbol for {element}?",
                          f"The chemical symbol for {element} is", f" {symbol}", element))
    for word, opposite in _OPPOSITES.items():
        items.append(Item("opposites", f"What is the opposite of {word}?", f"The opposite of {word} is",
                          f" {opposite}", word))
    for city, country in _CITIES.items():
        items.append(Item("cities", f"Which country is {city} in?", f"{city} is in", f" {country}", city))
    for word, plural in _PLURALS.items():
        items.append(Item("plurals", f"What is the plural of {word}?", f"The plural of {word} is",
                          f" {plural}", word))
    return items


QUESTIONS: list[Item] = _items()
TOPICS: tuple[str, ...] = tuple(dict.fromkeys(item.topic for item in QUESTIONS))


def answers_of(topic: str) -> list[str]:
    """The distinct true answers of one topic: the pool lies are drawn from."""
    return sorted({item.answer for item in QUESTIONS if item.topic == topic})


def false_answer(item: Item, rng: random.Random, exclude: tuple[str, ...] = ()) -> str:
    """A wrong answer from the same topic (never the true one, nor anything in ``exclude``)."""
    pool = [a for a in answers_of(item.topic) if a != item.answer and a not in exclude]
    return rng.choice(pool)


def statement(item: Item, answer: str, negated: bool = False) -> str:
    """``"The capital of France is Paris."``; negated: ``"The capital of France is not Paris."``."""
    stem = item.stem
    if negated:
        head, _, tail = stem.rpartition(" is")
        stem = f"{head} is not{tail}"
    return f"{stem}{answer}."
