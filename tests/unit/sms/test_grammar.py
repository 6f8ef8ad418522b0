"""Recognising commands: case, spaces, punctuation and Latin/Cyrillic look-alikes folded; exact matches only."""

from __future__ import annotations

import pytest

from ivr.sms.config import SmsConfig
from ivr.sms.grammar import Grammar, Match
from ivr.sms.keyword_fold import skeleton


@pytest.fixture(scope="module")
def grammar(sms_config: SmsConfig) -> Grammar:
    return Grammar.of(sms_config.commands, sms_config.fallback)


def match(grammar: Grammar, text: str) -> Match:
    return grammar.match(text)


def test_skeleton_folds_case_and_spaces() -> None:
    assert skeleton("  roam   On ") == "ROAM ON"


def test_skeleton_maps_cyrillic_look_alikes_to_latin() -> None:
    assert skeleton("ВАL") == "BAL"  # Cyrillic В and А, Latin L
    assert skeleton("вал") != "BAL"  # Cyrillic л has no Latin twin


def test_skeleton_maps_greek_look_alikes_to_latin() -> None:
    assert skeleton("ΒΑL") == "BAL"


def test_skeleton_folds_full_width_letters() -> None:
    assert skeleton("ＢＡＬ") == "BAL"


def test_skeleton_trims_punctuation_around_words() -> None:
    assert skeleton("Bal!") == "BAL"
    assert skeleton("«Баланс»?") == skeleton("БАЛАНС")


def test_skeleton_keeps_letters_without_a_latin_twin() -> None:
    assert skeleton("баланс") == skeleton("БАЛАНС") != skeleton("BALANS")


def test_latin_keyword_matches_in_any_case(grammar: Grammar) -> None:
    for text in ("BAL", "bal", "Bal", " bal "):
        assert match(grammar, text).command.name == "balance"


def test_cyrillic_look_alike_spelling_matches_the_latin_keyword(grammar: Grammar) -> None:
    found = match(grammar, "ВАL")
    assert (found.command.name, found.keyword_language) == ("balance", "en")


def test_all_cyrillic_look_alikes_match_a_latin_keyword(grammar: Grammar) -> None:
    assert match(grammar, "НЕLР").command.name == "help"  # Cyrillic Н, Е, Р


def test_russian_alias_matches_with_its_language(grammar: Grammar) -> None:
    found = match(grammar, "баланс")
    assert (found.command.name, found.keyword_language) == ("balance", "ru")


def test_two_word_keyword_ignores_extra_spaces(grammar: Grammar) -> None:
    assert match(grammar, "roam    on").command.name == "roaming_on"
    assert match(grammar, "Роуминг  вкл").command.name == "roaming_on"


def test_roam_off_is_not_roam_on(grammar: Grammar) -> None:
    assert match(grammar, "ROAM OFF").command.name == "roaming_off"


def test_extra_words_are_not_ignored(grammar: Grammar) -> None:
    found = match(grammar, "ROAM ON NOW")
    assert not found.recognised
    assert found.command.name == "help"


def test_unknown_text_gets_the_fallback(grammar: Grammar) -> None:
    found = match(grammar, "what is my balance")
    assert (found.command.name, found.recognised) == ("help", False)


def test_empty_text_gets_the_fallback(grammar: Grammar) -> None:
    assert match(grammar, "").command.name == "help"
    assert match(grammar, " ?! ").command.name == "help"


def test_keyword_alone_lists_the_tariffs(grammar: Grammar) -> None:
    assert match(grammar, "TARIFF").command.name == "tariffs"


def test_keyword_with_argument_picks_the_canonical_choice(grammar: Grammar) -> None:
    found = match(grammar, "tariff smart")
    assert (found.command.name, found.argument) == ("tariff_change", "Smart")


def test_argument_may_be_several_words(grammar: Grammar) -> None:
    assert match(grammar, "TARIFF business  pro").argument == "Business Pro"


def test_argument_has_russian_spellings(grammar: Grammar) -> None:
    found = match(grammar, "ТАРИФ СМАРТ")
    assert (found.command.name, found.argument, found.keyword_language) == ("tariff_change", "Smart", "ru")


def test_unknown_argument_is_rejected_with_what_was_written(grammar: Grammar) -> None:
    found = match(grammar, "TARIFF Platinum+")
    assert (found.command.name, found.argument, found.rejected) == ("tariff_change", None, "Platinum+")


def test_argument_that_is_another_keyword_stays_an_argument(grammar: Grammar) -> None:
    assert match(grammar, "TARIFF START").argument == "Start"
