"""The opioid matcher, rule by rule (domain.md section 2). Pure: no database."""

import json

import pytest

from patients import opioids
from patients.opioids import Catalog, CatalogError, load_catalog, match


@pytest.mark.parametrize(
    ("name", "ingredients"),
    [
        ("APAP/HYDROCODONE BITARTRATE 325-5 MG", {"hydrocodone", "acetaminophen"}),
        ("Tylenol w/ Codeine #3", {"codeine", "acetaminophen"}),
        ("norco 10/325", {"hydrocodone", "acetaminophen"}),
        ("Suboxone 8-2 film", {"buprenorphine", "naloxone"}),
        ("butrans 10 mcg/hr", {"buprenorphine"}),
        ("kratom powder", {"kratom"}),
        ("Tussionex pennkinetic", {"hydrocodone", "chlorpheniramine"}),
        ("Belbuca 300mcg", {"buprenorphine"}),
    ],
)
def test_issue_examples_are_conflicts_with_their_ingredients_OPI_1(name, ingredients):
    result = match(name)
    assert result.klass == "conflict"
    assert set(result.ingredients) == ingredients
    assert result.evidence, "every finding carries its evidence"


@pytest.mark.parametrize(
    "name",
    ["OXYCODONE HYDROCHLORIDE 5 MG", "oxycodone hcl", "Morphine Sulfate 15mg", "codeine phosphate", "fentanyl citrate"],
)
def test_salts_map_to_the_base_ingredient_OPI_1(name):
    result = match(name)
    assert result.klass == "conflict"
    assert len(result.opioid_ingredients) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hydrocodon 5 mg", "hydrocodone"),
        ("oxycodon", "oxycodone"),
        ("TRAMADOL HCL", "tramadol"),
        ("percoset", "oxycodone"),
    ],
)
def test_typing_slips_do_not_hide_an_opioid_OPI_2(name, expected):
    result = match(name)
    assert result.klass == "conflict"
    assert expected in result.ingredients
    assert any(e.kind in {"fuzzy", "ingredient", "product"} for e in result.evidence)


@pytest.mark.parametrize("name", ["unknown opioid", "opiate pain pill", "some narcotic from the ER", "codeinol"])
def test_unmatched_opioid_looking_words_are_caution_verify_OPI_2(name):
    result = match(name)
    assert result.klass == "caution"
    assert opioids.POSSIBLE_OPIOID_NOTE in result.notes


@pytest.mark.parametrize(
    "name",
    [
        "oxybutynin",
        "oxcarbazepine",
        "oxaprozin",
        "hydroxyzine",
        "hydrochlorothiazide",
        "hydrocortisone",
        "Hydrocortone",
        "fenofibrate",
        "methocarbamol",
        "methylphenidate",
        "trazodone",
        "tramazoline",
        "Robitussin DM",
        "dextromethorphan HBr 30 mg",
        "codeine-free cough syrup",
        "Fioricet",
        "Tessalon Perles",
    ],
)
def test_look_alikes_are_not_opioids_OPI_2(name):
    assert match(name).klass == "none"


@pytest.mark.parametrize("name", ["Suboxone", "Embeda 30-1.2 mg", "Talwin NX", "Targiniq ER"])
def test_antagonist_co_ingredient_never_clears_the_conflict_OPI_3(name):
    result = match(name)
    assert result.klass == "conflict"
    assert any("does not cancel" in note for note in result.notes)


def test_dextromethorphan_syrup_with_codeine_is_a_conflict_OPI_3():
    assert match("Tussin DM with codeine").klass == "conflict"
    assert match("Tussin DM").klass == "none"


@pytest.mark.parametrize(
    ("name", "klass", "note"),
    [
        ("Revia 50 mg", "antagonist", "duplicate antagonist"),
        ("Vivitrol 380 mg", "antagonist", "duplicate antagonist"),
        ("Contrave 8/90", "antagonist", "duplicate antagonist"),
        ("Narcan nasal spray", "antagonist", None),
        ("nalmefene", "antagonist", None),
        ("Relistor", "opioid_context", "ask"),
        ("Movantik 25 mg", "opioid_context", "ask"),
        ("Symproic", "opioid_context", "ask"),
        ("Imodium A-D", "caution", "16 mg"),
        ("Lomotil", "caution", None),
    ],
)
def test_antagonists_and_context_medicines_are_never_conflicts_OPI_3(name, klass, note):
    result = match(name)
    assert result.klass == klass
    if note:
        assert any(note in n for n in result.notes)


@pytest.mark.parametrize(
    ("name", "release", "days"),
    [
        ("Percocet 5/325", None, 10),
        ("OxyContin 20 mg", "ER", 14),
        ("oxycodone ER 10 mg", "ER", 14),
        ("morphine sulfate XR", "ER", 14),
        ("Methadone 10 mg", None, 14),
        ("Subutex 8 mg SL", None, 14),
        ("fentanyl 25 mcg/hr patch", "patch", 14),
        ("Butrans 5 mcg/hr", "patch", 14),
        ("Sublocade 300 mg", "depot", None),
        ("buprenorphine extended-release injection", "depot", None),
        ("kratom capsules", None, 10),
        ("tianeptine sodium", None, 10),
    ],
)
def test_washout_days_follow_the_slowest_group_OPI_W1(name, release, days):
    result = match(name)
    assert result.klass == "conflict"
    assert result.release == release
    assert result.washout_days == days
    if days is None:
        assert result.washout_group == "depot"
        assert any("prescriber must clear" in n for n in result.notes)


def test_every_result_records_the_catalog_version():
    assert match("Norco").catalog_version == load_catalog().version != ""


def test_missing_catalog_raises_catalog_error(tmp_path):
    with pytest.raises(CatalogError):
        load_catalog(tmp_path / "absent.json")


def test_catalog_with_duplicate_keys_is_refused(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"version": "x", "version": "y"}')
    with pytest.raises(CatalogError, match="duplicate"):
        load_catalog(path)


def test_a_failing_check_answers_unavailable_not_none():
    class Broken(Catalog):
        def __init__(self):
            pass

        def match(self, name):
            raise RuntimeError("boom")

    result = match("Norco", catalog=Broken())
    assert result.klass == "unavailable"
    assert "review manually" in result.notes[0]


def test_catalog_entries_are_consistent():
    data = json.loads(opioids.CATALOG_PATH.read_text())
    for name, spec in data["ingredients"].items():
        if spec["class"] == "conflict":
            assert spec["group"] in data["washout_groups"], name
        assert spec.get("rxcui", "") == "" or spec["rxcui"].isdigit(), name  # verified codes only, never guesses
