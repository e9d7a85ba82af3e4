"""Opioid conflict matcher (domain.md section 2: OPI-1..OPI-4, OPI-W1).

``match(name)`` takes a medicine as people write it ("APAP/HYDROCODONE BITARTRATE 325-5 MG",
"Tylenol w/ Codeine #3", "butrans 10 mcg/hr") and returns its ingredients, class, washout group,
release type and the evidence for each finding. It matches on ingredients and their synonyms
(generic names, brands, combination products, international names) from the versioned catalog
``opioid_catalog.json``, never on whole product strings, so unseen combinations are still caught.

Pure: no ORM, no clock. If the catalog cannot be loaded or matching raises, the answer is
"unavailable" ("check unavailable: review manually"), never "none".
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

logger = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).with_name("opioid_catalog.json")

CONFLICT, CAUTION, OPIOID_CONTEXT, ANTAGONIST, NONE, UNAVAILABLE = (
    "conflict",
    "caution",
    "opioid_context",
    "antagonist",
    "none",
    "unavailable",
)
# OPI-3: the most serious class among a product's ingredients decides; an antagonist never downgrades.
CLASS_PRIORITY = (CONFLICT, CAUTION, OPIOID_CONTEXT, ANTAGONIST, NONE)
RELEASE_PRIORITY = ("depot", "patch", "ER", "IR")  # slowest first
INJECTION_WORDS = frozenset({"injection", "inj", "injectable", "subcutaneous", "sc", "syringe", "weekly", "monthly"})
UNAVAILABLE_NOTE = "check unavailable: review manually"
POSSIBLE_OPIOID_NOTE = "possible opioid, verify (OPI-2)"

_TOKEN = re.compile(r"#\d+|&|[a-z]+|\d+(?:\.\d+)?")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")


class CatalogError(Exception):
    """The catalog file is missing or malformed: every check must then say 'review manually'."""


def tokenize(text: str) -> list[str]:
    # Accents off (codéine, péthidine), apostrophes out (Neptune's), "w/" and "w/o" spelt out.
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = text.replace("'", "").replace("w/o", " without ").replace("w/", " with ")
    return _TOKEN.findall(_LETTER_DIGIT.sub(" ", text))


def stem(word: str) -> str:
    """A spelling-neutral key: international and phonetic spellings of one generic share it
    (morfina/morphine, metadona/methadone, nalbufina/nalbuphine, fentanilo/fentanyl)."""
    key = word.replace("ph", "f").replace("th", "t").replace("y", "i").replace("k", "c").replace("ae", "e")
    for ending in ("um", "us", "o", "a", "e"):
        if key.endswith(ending) and len(key) - len(ending) >= 5:
            return key[: -len(ending)]
    return key


@dataclass(frozen=True)
class Ingredient:
    name: str
    klass: str
    rxcui: str = ""
    atc: tuple[str, ...] = ()
    group: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Evidence:
    text: str  # the words of the input that matched
    synonym: str  # the catalog entry they matched
    ingredients: tuple[str, ...]
    kind: str  # ingredient, product, joined, fuzzy, fragment, release, negated

    def __str__(self) -> str:
        target = "+".join(self.ingredients) if self.ingredients else self.kind
        return f'"{self.text}" -> {self.synonym} ({target}; {self.kind})'


@dataclass(frozen=True)
class MatchResult:
    name: str
    klass: str
    ingredients: tuple[str, ...]
    washout_group: str | None
    washout_days: int | None
    release: str | None
    evidence: tuple[Evidence, ...]
    notes: tuple[str, ...] = ()
    catalog_version: str = ""
    opioid_ingredients: tuple[str, ...] = field(default=())

    @property
    def is_conflict(self) -> bool:
        return self.klass == CONFLICT

    def as_dict(self) -> dict:
        """The shape of `check_opioid --json` and the API."""
        return {
            "name": self.name,
            "class": self.klass,
            "ingredients": list(self.ingredients),
            "washout_days": self.washout_days,
            "washout_group": self.washout_group,
            "release": self.release,
            "evidence": [str(e) for e in self.evidence],
            "notes": list(self.notes),
            "catalog_version": self.catalog_version,
        }

    def evidence_dicts(self) -> list[dict]:
        return [asdict(e) for e in self.evidence]


def _damerau(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance, giving up early past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    for k in range(1, depth + 1):
        if len(word) - k < 3:
            break
        out.update(
            "".join(c for i, c in enumerate(word) if i not in drop) for drop in combinations(range(len(word)), k)
        )
    return out


def _allowed_distance(token: str, synonym: str) -> int:
    # Typing slips: one edit for words of 6+ letters, two only when both are long (hidrocodona).
    # Checked against 100k+ drug names: looser limits turn hydrogen, methanol, tiamazol into opioids.
    return 2 if len(token) >= 10 and len(synonym) >= 10 else 1


class Catalog:
    def __init__(self, data: dict):
        try:
            self.version: str = data["version"]
            self.groups: dict[str, dict] = data["washout_groups"]
            self.ingredients: dict[str, Ingredient] = {}
            # phrase (tuple of tokens) -> (ingredients, release or None, kind, synonym)
            self.phrases: dict[tuple[str, ...], tuple[tuple[str, ...], str | None, str, str]] = {}
            for name, spec in data["ingredients"].items():
                ingredient = Ingredient(
                    name=name,
                    klass=spec["class"],
                    rxcui=spec.get("rxcui", ""),
                    atc=tuple(spec.get("atc", ())),
                    group=spec.get("group"),
                    note=spec.get("note", ""),
                )
                if ingredient.klass not in CLASS_PRIORITY:
                    raise CatalogError(f"{name}: unknown class {ingredient.klass!r}")
                if ingredient.klass == CONFLICT and ingredient.group not in self.groups:
                    raise CatalogError(f"{name}: a conflict needs a washout group")
                self.ingredients[name] = ingredient
                for synonym in {name, *spec["synonyms"]}:
                    self._add_phrase(synonym, (name,), None, "ingredient")
                for brand in spec.get("brands", ()):
                    self._add_phrase(brand, (name,), None, "product")
            for product, spec in data["products"].items():
                if isinstance(spec, list):
                    spec = {"ingredients": spec}
                unknown = set(spec["ingredients"]) - set(self.ingredients)
                if unknown or not spec["ingredients"]:
                    raise CatalogError(f"product {product!r} names unknown ingredients {sorted(unknown)}")
                self._add_phrase(product, tuple(spec["ingredients"]), spec.get("release"), "product")
            self.release_words = {tuple(tokenize(k)): v for k, v in data["release_words"].items()}
            self.negators_before = frozenset(data["negators_before"])
            self.negators_after = frozenset(data["negators_after"])
            # "^opium" matches at the start of a word only (not ipratropium, tiotropium).
            self.fragments = tuple((f.lstrip("^"), f.startswith("^")) for f in data["fragments"])
            # Look-alikes are never fuzzy-matched or fragment-flagged; "word*" covers every ending.
            self.look_alikes = frozenset(w for w in data["look_alikes"] if not w.endswith("*"))
            self.look_alike_prefixes = tuple(w[:-1] for w in data["look_alikes"] if w.endswith("*"))
            self.fuzzy_brands = frozenset(data.get("fuzzy_brands", ()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CatalogError(f"malformed catalog: {exc!r}") from exc
        self.max_phrase = max(len(p) for p in self.phrases)
        self.release_max = max(len(p) for p in self.release_words)
        self._build_fuzzy_index()

    def _add_phrase(self, text: str, ingredients: tuple[str, ...], release: str | None, kind: str) -> None:
        key = tuple(tokenize(text))
        if not key:
            raise CatalogError(f"empty synonym for {ingredients}")
        existing = self.phrases.get(key)
        if existing and set(existing[0]) != set(ingredients):
            raise CatalogError(f"{text!r} maps to both {existing[0]} and {ingredients}")
        self.phrases[key] = (tuple(sorted(set(ingredients))), release, kind, text)

    def _build_fuzzy_index(self) -> None:
        """Typo-tolerant lookups over opioid (conflict, caution) generic names and a few major brands.

        Brand names in general are matched exactly: thousands of real brands sit one letter from an
        opioid brand (Ultracef/Ultracet, Furoxone/Suboxone), while generic names are long and distinct.
        """
        self.fuzzy: dict[str, set[str]] = {}
        self.stems: dict[str, str] = {}
        self.single: dict[str, tuple[str, ...]] = {}
        for key, (ingredients, _release, kind, _text) in self.phrases.items():
            if len(key) != 1:
                continue
            word = key[0]
            self.single[word] = key
            serious = any(self.ingredients[i].klass in (CONFLICT, CAUTION) for i in ingredients)
            if not (serious and word.isalpha() and len(word) >= 6):
                continue
            if kind == "ingredient":
                self.stems.setdefault(stem(word), word)
            if kind == "ingredient" or word in self.fuzzy_brands:
                for variant in _deletes(word, 2 if len(word) >= 10 else 1):
                    self.fuzzy.setdefault(variant, set()).add(word)

    @lru_cache(maxsize=50_000)  # noqa: B019 - one catalog per process; tokens repeat across names
    def fuzzy_lookup(self, token: str) -> str | None:
        if len(token) < 6 or not token.isalpha() or self.is_look_alike(token):
            return None
        by_stem = self.stems.get(stem(token))
        if by_stem:
            return by_stem
        candidates: set[str] = set()
        for variant in _deletes(token, 2 if len(token) >= 10 else 1):
            candidates |= self.fuzzy.get(variant, set())
        best, best_distance = None, 99
        for synonym in sorted(c for c in candidates if c[0] == token[0]):  # slips rarely hit the first letter
            limit = _allowed_distance(token, synonym)
            distance = _damerau(token, synonym, limit)
            if distance <= limit and distance < best_distance:
                best, best_distance = synonym, distance
        return best

    def is_look_alike(self, token: str) -> bool:
        return token in self.look_alikes or token.startswith(self.look_alike_prefixes)

    def _negated(self, tokens: list[str], start: int, end: int) -> bool:
        before = tokens[start - 1] if start > 0 else ""
        after = tokens[end] if end < len(tokens) else ""
        return before in self.negators_before or after in self.negators_after

    def _release(self, tokens: list[str]) -> set[str]:
        found = set()
        for i in range(len(tokens)):
            for length in range(min(self.release_max, len(tokens) - i), 0, -1):
                release = self.release_words.get(tuple(tokens[i : i + length]))
                if release:
                    found.add(release)
                    break
        return found

    def match(self, name: str, release_hint: str | None = None) -> MatchResult:
        """``release_hint``: what the medication record says (ER, patch, depot), merged with the name's."""
        tokens = tokenize(name)
        evidence: list[Evidence] = []
        found: dict[str, None] = {}  # ordered set of ingredient names
        product_release: set[str] = set()
        fragment_hit = False
        i = 0
        while i < len(tokens):
            hit = None
            for length in range(min(self.max_phrase, len(tokens) - i), 0, -1):
                key = tuple(tokens[i : i + length])
                if key in self.phrases:
                    hit = (key, length, self.phrases[key], None)
                    break
            if hit is None and i + 1 < len(tokens):
                joined = tokens[i] + tokens[i + 1]  # "oxy contin", "hydro codone"
                if joined in self.single:
                    hit = (tuple(tokens[i : i + 2]), 2, self.phrases[self.single[joined]], "joined")
            if hit is None and tokens[i].isalpha():
                synonym = self.fuzzy_lookup(tokens[i])
                if synonym:
                    hit = ((tokens[i],), 1, self.phrases[(synonym,)], "fuzzy")
            if hit is None:
                token = tokens[i]
                if (
                    token.isalpha()
                    and not self.is_look_alike(token)
                    and any(token.startswith(f) if prefix else f in token for f, prefix in self.fragments)
                    and not self._negated(tokens, i, i + 1)
                ):
                    fragment_hit = True
                    evidence.append(Evidence(token, "opioid-looking fragment", (), "fragment"))
                i += 1
                continue
            key, length, (ingredients, release, kind, synonym), how = hit
            text = " ".join(key)
            if self._negated(tokens, i, i + length):
                evidence.append(Evidence(text, synonym, ingredients, "negated"))
            else:
                evidence.append(Evidence(text, synonym, ingredients, how or kind))
                found.update(dict.fromkeys(ingredients))
                if release:
                    product_release.add(release)
            i += length
        if release_hint in RELEASE_PRIORITY:
            product_release.add(release_hint)
        return self._classify(name, tokens, tuple(found), evidence, product_release, fragment_hit)

    def _classify(self, name, tokens, found, evidence, product_release, fragment_hit) -> MatchResult:
        classes = {self.ingredients[i].klass for i in found}
        klass = next((c for c in CLASS_PRIORITY if c in classes), NONE)
        if klass in (NONE, OPIOID_CONTEXT, ANTAGONIST) and fragment_hit:
            klass = CAUTION
        releases = product_release | self._release(tokens)  # the slowest release named anywhere wins
        opioids = tuple(i for i in found if self.ingredients[i].klass == CONFLICT)
        if "buprenorphine" in opioids and "ER" in releases and INJECTION_WORDS & set(tokens):
            releases = releases | {"depot"}  # extended-release buprenorphine injection is a depot
        release = next((r for r in RELEASE_PRIORITY if r in releases), None)
        notes: list[str] = []
        group = days = None
        if klass == CONFLICT:
            group = self._washout_group(opioids, release)
            days = self.groups[group]["days"]
            if days is None:
                notes.append("depot/implant: no automatic washout date; a prescriber must clear it (OPI-W1)")
            else:
                notes.append(f"opioid: stop at least {days} days before LDN (OPI-W1)")
            if any(self.ingredients[i].klass == ANTAGONIST for i in found):
                notes.append("the antagonist in this product does not cancel the opioid (OPI-3)")
        elif klass == CAUTION and not any(self.ingredients[i].klass == CAUTION for i in found):
            notes.append(POSSIBLE_OPIOID_NOTE)
        for ingredient in found:
            note = self.ingredients[ingredient].note
            if note and self.ingredients[ingredient].klass in (CAUTION, ANTAGONIST, OPIOID_CONTEXT):
                notes.append(note)
        if release:
            evidence.append(Evidence(release, "release", (), "release"))
        return MatchResult(
            name=name,
            klass=klass,
            ingredients=tuple(sorted(found)),
            washout_group=group,
            washout_days=days,
            release=release,
            evidence=tuple(evidence),
            notes=tuple(notes),
            catalog_version=self.version,
            opioid_ingredients=tuple(sorted(opioids)),
        )

    def _washout_group(self, opioids: tuple[str, ...], release: str | None) -> str:
        """OPI-W1: the slowest ingredient decides; ER and patches are long, depots need a prescriber."""
        if release == "depot":
            return "depot"
        groups = {self.ingredients[i].group for i in opioids}
        if release in ("ER", "patch"):
            groups.add("long")
        return "long" if "long" in groups else "short"


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise CatalogError(f"duplicate keys in catalog: {sorted(duplicates)}")
    return dict(pairs)


def load_catalog(path: Path | str = CATALOG_PATH) -> Catalog:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return Catalog(json.loads(text, object_pairs_hook=_reject_duplicates))
    except CatalogError:
        raise
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot load opioid catalog {path}: {exc}") from exc


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    return load_catalog()


def unavailable(name: str, reason: str) -> MatchResult:
    return MatchResult(
        name=name,
        klass=UNAVAILABLE,
        ingredients=(),
        washout_group=None,
        washout_days=None,
        release=None,
        evidence=(),
        notes=(f"{UNAVAILABLE_NOTE} ({reason})",),
    )


def match(name: str, catalog: Catalog | None = None, release_hint: str | None = None) -> MatchResult:
    """Classify one medicine name. Never raises and never answers 'none' when it could not check."""
    try:
        return (catalog or get_catalog()).match(name or "", release_hint=release_hint)
    except Exception as exc:  # noqa: BLE001 - any failure must surface as "review manually"
        logger.exception("opioid check failed for %r", name)
        return unavailable(name, f"{type(exc).__name__}: {exc}")
