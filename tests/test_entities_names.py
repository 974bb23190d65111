"""Name rules (pipeline/names.py) and in-article entity trimming (pipeline/entities.py)."""

from __future__ import annotations

import pytest

from pipeline import names
from pipeline.entities import find_mentions


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Joseph R. Biden Jr.", "joseph r biden jr"),
        ("Chairperson Donna Brazile", "donna brazile"),
        ("Sen. Bernie Sanders", "bernie sanders"),
        ("Vladimir] Putin", "vladimir putin"),
        ("Mr. Trump", "trump"),
        ("Obama's", "obama"),
        ("Prince Andrew", "prince andrew"),
        ("King Charles III", "king charles iii"),
        ("James Van Der Beek", "james van der beek"),
        ("Van Der Beek", "van der beek"),
    ],
)
def test_person_names_parse_to_keys(text, key):
    assert names.parse_person(text).key() == key


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("James B. Comey", "James Comey", True),
        ("Loretta E. Lynch", "Loretta Lynch", True),
        ("Joseph R. Biden Jr.", "Joseph R. Biden", True),
        ("Joe Biden", "Joseph R. Biden", True),
        ("Bill Clinton", "William Clinton", True),
        ("Rudy Giuliani", "Rudolph Giuliani", True),
        ("Hillary Clinton", "Bill Clinton", False),
        ("Barack Obama", "Michelle Obama", False),
        ("Donald Trump", "Donald Trump Jr.", False),
        ("Donald Trump", "Melania Trump", False),
        ("Donald Trump", "Ivanka Trump", False),
        ("James B. Comey", "James C. Comey", False),
    ],
)
def test_compatible_full_names(a, b, same):
    assert names.compatible(names.parse_person(a), names.parse_person(b)) is same
    assert names.compatible(names.parse_person(b), names.parse_person(a)) is same


def test_places_by_iso_code():
    us = {"U.S.", "US", "USA", "United States", "America", "the United States", "United States of America"}
    assert {names.place_code(x) for x in us} == {"US"}
    assert {names.place_code(x) for x in ("UK", "U.K.", "Britain", "United Kingdom")} == {"GB"}
    assert names.place_code("IN") is None  # a word before it is a code
    assert names.place_name("US") == "United States"


def test_organisations_without_legal_form():
    assert names.org_key("Apple Inc.") == names.org_key("Apple") == "apple"
    assert names.org_key("European Aeronautic Defence & Space NV") == "european aeronautic defence and space"
    assert names.org_key("Ford Motor Company") == names.org_key("Ford") == "ford"
    assert names.org_key("Apple Computer") == "apple"
    assert names.org_key("General Motors Corp.") == "general motors"
    assert names.org_key("Singapore Airlines") == "singapore airlines"
    assert names.acronym_of("General Motors") == "GM"
    assert names.as_acronym("U.N.") == "UN"
    assert names.as_acronym("Apple") == ""


def test_fragments_and_debris():
    assert names.looks_like_fragment("Trump 43 percent to")
    assert names.strip_headline_words("Obama Focused") == "Obama"
    assert names.strip_headline_words("Washington Post Trump") == "Trump"
    assert names.is_not_a_person("MacBook Pro") and names.is_not_a_person("Twitter")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A royal title is how he is named; the lone given name after it is him.
        ("Prince Andrew spoke to the BBC on Monday. Andrew said he regrets it.", ("Prince Andrew", "Prince Andrew")),
        # A multi-word surname follows the full name in the same article.
        (
            "Judge Kathleen Hawk Sawyer ruled on Monday. Hawk Sawyer said no.",
            ("Kathleen Hawk Sawyer", "Kathleen Hawk Sawyer"),
        ),
        # Team and position before a name are not part of it.
        ("Browns DL Sheldon Richardson was hurt. Richardson said nothing.", ("Sheldon Richardson",)),
    ],
)
def test_person_spans_are_trimmed_to_the_name(nlp, text, expected):
    mentions, clusters = find_mentions(nlp(text))
    people = [clusters[m.cluster].name for m in mentions if m.label == "PERSON"]
    assert tuple(people[: len(expected)]) == expected


def test_scores_and_platforms_are_not_people(nlp):
    mentions, clusters = find_mentions(nlp("Uchiyama 6-2 won the set. He posted on Twitter afterwards."))
    texts = {m.text: m.label for m in mentions}
    assert not any(ch.isdigit() for t in texts for ch in t)
    assert texts.get("Twitter") != "PERSON"
