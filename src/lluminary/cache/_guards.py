"""Near-miss guards for the semantic cache: cheap checks that veto a similar-looking question.

Sentence embeddings measure topic, not truth conditions: MiniLM rates "How do I
reset my password?" against "How do I not reset my password?" at 0.93, and
"convert Celsius to Fahrenheit" against "convert Fahrenheit to Celsius" at 0.99.
No single threshold separates those from real paraphrases (vllm semantic-router
#2691, GPTCache #694), so a candidate above the threshold must also pass every
check below, each of which compares the two texts and fails on a difference
that flips the answer:

``negation``  the set of negation cues differs (not, no, never, none, nothing,
              without, cannot, ``n't`` …; ``n't`` and ``cannot`` count as "not").
``numbers``   the numbers differ (digits, and number words up to the billions;
              "three" equals "3", "first" equals "1st").
``quoted``    the quoted strings differ ("…", '…', `…`, “…”): quoted text is literal.
``entities``  a name in one text is missing from the other, or shared names come
              in another order ("Does Alice owe Bob?" / "Does Bob owe Alice?").
              A name is a word with a capital letter that is not merely the
              capitalised first word of a sentence (those count unless they are
              common words: "Explain", "How", "Paris" does count).
``opposites`` one text uses a word where the other uses its opposite, from a list
              of pairs (enable/disable, before/after, ascending/descending …) and
              the prefixes un-, dis-, in-, im-, il-, ir-, non-, de-.
``roles``     the objects of from/to/into/than/versus changed places: a word that
              follows "to" in one text appears in the other in another role
              ("miles to km" / "km to miles").
``substitution`` the topic words (what is left without function words) are the
              same but for one, and that one is not the first: "fix a flat bike
              tire" / "fix a flat car tire". The first topic word is usually the
              action ("reset", "contact", "write"), where paraphrases do swap in
              synonyms ("reach", "compose"); its opposites are caught above.

Every check errs on the side of a miss: a false miss costs one provider call, a
false hit returns a wrong answer. Comparisons are on lower-cased words with a
light suffix stemmer, so "enabling"/"enable" and "Disabled"/"disable" meet.
:func:`near_miss` returns the name of the first check that failed, or None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["GUARDS", "near_miss"]

GUARDS: Final = ("negation", "numbers", "quoted", "entities", "opposites", "roles", "substitution")

# Typographic quotes are written as escapes: \u2018 \u2019 are single, \u201c \u201d double.
_WORD: Final = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*|\d+(?:[.,]\d+)*(?:st|nd|rd|th)?", re.UNICODE)
_QUOTED: Final = re.compile(
    r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d|`([^`]+)`|\u2018([^\u2019]+)\u2019|(?:(?<=\s)|^)'([^']+)'(?=[\s.,;:!?)]|$)",
    re.UNICODE,
)
_OPENING: Final = frozenset(" \t\r\"'\u201c\u2018([")
_ENDING: Final = frozenset(".?!:;\n")

_NEGATIONS: Final = frozenset(
    {"not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot"}
    | {"dont", "doesnt", "didnt", "cant", "wont", "isnt", "arent", "wasnt", "werent", "shouldnt"}
    | {"couldnt", "wouldnt", "havent", "hasnt", "hadnt", "mustnt", "aint"}
)
_UNITS: Final = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 10**6, "billion": 10**9, "dozen": 12, "twice": 2, "half": 0.5, "quarter": 0.25,
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10,
}  # fmt: skip
# Words that carry no topic: a question keeps its subject when only these change.
_FUNCTION: Final = frozenset(
    """a an the this that these those there here it its is are was were be been am do does did can could
    will would shall should may might must have has had what whats which who whom whose why when where how
    hows if in on at for to of from with by about as and or but so i me my mine myself you your yours we us
    our they them their he him his she her one ones into onto over under between through during within up
    down out off than then too very really just only also even still yet already again please kindly
    what's how's where's who's when's why's which's i'm i'd i've can't don't doesn't isn't hey hi hello ok
    okay yes way ways best better good possible right proper correct exactly actually any some""".split()  # noqa: SIM905 - a word list reads best as text
)
# Capitalised sentence openers that are not names: the words above, and the verbs requests start with.
_OPENERS: Final = _FUNCTION | frozenset(
    """tell give show list write explain describe summarize summarise compare define find make create help
    let lets get go use using need want all each every many much most more quick simple easy generate
    translate convert calculate compute suggest recommend name provide outline draft rewrite fix check
    count sort other another two three step steps instructions guide tips difference differences meaning
    similar same new old compose build design plan identify discuss analyze analyse review improve prepare
    teach set turn switch take try keep add remove delete install run print read walk learn is""".split()  # noqa: SIM905 - a word list reads best as text
)
_PAIRS: Final = (
    ("enable", "disable"), ("increase", "decrease"), ("add", "remove"), ("install", "uninstall"),
    ("start", "stop"), ("open", "close"), ("encrypt", "decrypt"), ("buy", "sell"), ("import", "export"),
    ("before", "after"), ("above", "below"), ("high", "low"), ("maximum", "minimum"), ("max", "min"),
    ("more", "less"), ("most", "least"), ("higher", "lower"), ("faster", "slower"),
    ("upload", "download"), ("compress", "decompress"), ("lock", "unlock"), ("show", "hide"),
    ("allow", "deny"), ("allow", "block"), ("accept", "reject"), ("include", "exclude"), ("win", "lose"),
    ("hot", "cold"), ("best", "worst"), ("true", "false"), ("positive", "negative"), ("early", "late"),
    ("cheap", "expensive"), ("dark", "light"), ("ascending", "descending"), ("asc", "desc"),
    ("upper", "lower"), ("uppercase", "lowercase"), ("up", "down"), ("on", "off"), ("in", "out"),
    ("left", "right"), ("first", "last"), ("oldest", "newest"), ("old", "new"), ("larger", "smaller"),
    ("bigger", "smaller"), ("long", "short"), ("heavy", "light"), ("push", "pull"), ("send", "receive"),
    ("input", "output"), ("connect", "disconnect"), ("merge", "split"), ("join", "leave"),
    ("love", "hate"), ("like", "dislike"), ("pros", "cons"), ("advantage", "disadvantage"),
    ("benefit", "risk"), ("safe", "dangerous"), ("legal", "illegal"), ("north", "south"), ("east", "west"),
    ("day", "night"), ("summer", "winter"), ("male", "female"), ("inside", "outside"), ("sync", "async"),
    ("synchronous", "asynchronous"), ("client", "server"), ("read", "write"), ("serialize", "deserialize"),
    ("encode", "decode"), ("zip", "unzip"), ("mount", "unmount"), ("freeze", "unfreeze"),
    ("follow", "unfollow"), ("subscribe", "unsubscribe"), ("rise", "fall"), ("gain", "lose"),
    ("profit", "loss"), ("success", "failure"), ("pass", "fail"), ("always", "sometimes"), ("all", "some"),
    ("every", "some"), ("cause", "cure"), ("prevent", "cause"), ("tomorrow", "yesterday"),
    ("today", "tomorrow"), ("today", "yesterday"), ("past", "future"), ("previous", "next"), ("last", "next"),
)  # fmt: skip
_PREFIXES: Final = ("un", "dis", "in", "im", "il", "ir", "non", "de")
_ROLE_WORDS: Final = {"from": "from", "to": "to", "into": "to", "onto": "to", "than": "than"} | {
    "vs": "vs",
    "versus": "vs",
}
_SKIP: Final = frozenset({"a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "this", "that"})
_SELF: Final = frozenset({"i", "i'm", "i've", "i'd", "i'll"})  # after _plain: one apostrophe


def _stem(word: str) -> str:
    """A light suffix stripper: enough for "enabling" to meet "enable" and "cheapest" "cheap"."""
    stripped = False
    for suffix, minimum in (("ing", 6), ("est", 6), ("ed", 5), ("es", 5), ("er", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= minimum and not word.endswith("ss"):
            word = word[: -len(suffix)]
            stripped = True
            break
    if stripped and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "stopped" -> "stopp" -> "stop"
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


_PAIR_STEMS: Final = tuple((_stem(x), _stem(y)) for x, y in _PAIRS)


class _Text:
    """One side of a comparison, analysed once."""

    __slots__ = ("content", "entities", "negations", "numbers", "quoted", "roles", "stems", "words")

    def __init__(self, text: str) -> None:
        self.quoted = {next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)}
        tokens = [(m.group(), m.start()) for m in _WORD.finditer(text)]
        words = [_plain(tok) for tok, _ in tokens]
        self.words = set(words)
        self.stems = {_stem(w) for w in words}
        self.negations = {_negation(w) for w in words if _negation(w) is not None}
        self.numbers = {n for w in words if (n := _number(w)) is not None}
        self.content = [_stem(w) for w in words if w not in _FUNCTION and _number(w) is None]
        entities: list[str] = []
        for (token, start), word in zip(tokens, words, strict=True):
            if not any(c.isupper() for c in token) or word in _SELF or word[0].isdigit():
                continue
            if _opens_sentence(text, start) and token[1:].islower() and word in _OPENERS:
                continue
            if word not in entities:
                entities.append(word)
        self.entities = entities
        roles: set[tuple[str, str]] = set()
        for i, word in enumerate(words):
            role = _ROLE_WORDS.get(word)
            if role is None:
                continue
            j = i + 1
            while j < len(words) and words[j] in _SKIP:  # "to the km" -> km
                j += 1
            if j < len(words):
                roles.add((role, words[j]))
        self.roles = roles


def _opens_sentence(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in _OPENING and text[i] != "\n":
        i -= 1
    return i < 0 or text[i] in _ENDING


def _plain(token: str) -> str:
    word = token.lower().replace("\u2019", "'")
    for tail in ("'s", "'"):
        if word.endswith(tail) and len(word) > len(tail):
            return word[: -len(tail)]
    return word


def _negation(word: str) -> str | None:
    if word.endswith("n't") or word in ("cannot", "not"):
        return "not"
    if word in _NEGATIONS:
        return "not" if word.endswith("nt") else word
    return None


def _number(word: str) -> str | None:
    # Digits compare as written ("3.10" is not "3.1": versions), thousands separators aside.
    if word[0].isdigit():
        return word.rstrip("stndrh").replace(",", "")
    value = _UNITS.get(word)
    return None if value is None else str(value)


def _opposites(a: _Text, b: _Text) -> bool:
    for sx, sy in _PAIR_STEMS:
        if (sx in a.stems and sx not in b.stems and sy in b.stems and sy not in a.stems) or (
            sy in a.stems and sy not in b.stems and sx in b.stems and sx not in a.stems
        ):
            return True
    only_a, only_b = a.words - b.words, b.words - a.words
    return _prefixed(only_a, only_b) or _prefixed(only_b, only_a)


def _prefixed(words: Iterable[str], others: set[str]) -> bool:
    return any(p + w in others for w in words if len(w) >= 4 for p in _PREFIXES)


def _roles(a: _Text, b: _Text) -> bool:
    for role in {r for r, _ in a.roles} & {r for r, _ in b.roles}:
        objs_a = {o for r, o in a.roles if r == role}
        objs_b = {o for r, o in b.roles if r == role}
        if any(o in b.words for o in objs_a - objs_b) or any(o in a.words for o in objs_b - objs_a):
            return True
    return False


def _substitution(a: _Text, b: _Text) -> bool:
    if len(a.content) != len(b.content) or len(a.content) < 2:
        return False
    differ = [i for i, (x, y) in enumerate(zip(a.content, b.content, strict=True)) if x != y]
    return len(differ) == 1 and differ[0] > 0


def _entities(a: _Text, b: _Text) -> bool:
    if any(e not in b.words for e in a.entities) or any(e not in a.words for e in b.entities):
        return True
    shared = set(a.entities) & set(b.entities)
    return [e for e in a.entities if e in shared] != [e for e in b.entities if e in shared]


def near_miss(query: str, cached: str) -> str | None:
    """The first guard that tells ``query`` and ``cached`` apart, or None if all pass."""
    a, b = _Text(query), _Text(cached)
    if a.negations != b.negations:
        return "negation"
    if a.numbers != b.numbers:
        return "numbers"
    if a.quoted != b.quoted:
        return "quoted"
    if _entities(a, b):
        return "entities"
    if _opposites(a, b):
        return "opposites"
    if _roles(a, b):
        return "roles"
    if _substitution(a, b):
        return "substitution"
    return None
