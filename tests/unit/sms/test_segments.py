"""Segments as the operator counts them: GSM-7 160/153 (extension characters count double), UCS-2 70/67."""

from __future__ import annotations

from ivr.sms.segments import encoding_of, fits, measure, shorten


def test_plain_latin_text_is_gsm7() -> None:
    assert encoding_of("Your balance is 1,250.00 RUB.") == "gsm7"


def test_one_cyrillic_letter_makes_the_whole_text_ucs2() -> None:
    assert encoding_of("Balance: 100 руб") == "ucs2"


def test_gsm7_accented_letters_from_the_default_alphabet_stay_gsm7() -> None:
    assert encoding_of("Café è à Ñ ü ß £ ¥ §") == "gsm7"


def test_160_gsm7_characters_are_one_segment() -> None:
    assert measure("a" * 160).count == 1


def test_161_gsm7_characters_are_two_segments_of_153() -> None:
    assert measure("a" * 161).count == 2
    assert measure("a" * 306).count == 2
    assert measure("a" * 307).count == 3


def test_extension_characters_count_two_septets() -> None:
    info = measure("€" * 80)
    assert (info.encoding, info.units, info.count) == ("gsm7", 160, 1)
    assert measure("€" * 81).count == 2


def test_every_extension_character_counts_double() -> None:
    assert measure("^{}\\[~]|€\f").units == 20


def test_an_escape_pair_is_never_split_across_parts() -> None:
    # 152 septets, then "€" (2) would straddle the 153 boundary: it moves to part two.
    text = "a" * 152 + "€" + "a" * 152
    assert measure(text).units == 306
    assert measure(text).count == 3


def test_70_ucs2_characters_are_one_segment_and_71_are_two() -> None:
    assert measure("ж" * 70).count == 1
    assert measure("ж" * 71).count == 2
    assert measure("ж" * 134).count == 2
    assert measure("ж" * 135).count == 3


def test_characters_outside_the_bmp_take_two_ucs2_units() -> None:
    info = measure("🙂" * 35)
    assert (info.encoding, info.units, info.count) == ("ucs2", 70, 1)


def test_the_empty_text_is_one_segment() -> None:
    assert measure("").count == 1


def test_coding_is_what_kannel_expects() -> None:
    assert measure("BAL").coding == 0
    assert measure("БАЛАНС").coding == 2


def test_a_text_that_fits_is_left_alone() -> None:
    text = "word " * 31 + "end"
    assert shorten(text, 1) == text


def test_shortening_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    short = shorten(text, 1)
    assert short.endswith("...")
    assert fits(short, 1)
    kept = short[:-3].split(" ")
    assert kept == text.split(" ")[:len(kept)]  # whole words only, in order


def test_shortening_keeps_as_many_whole_words_as_fit() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    short = shorten(text, 1)
    next_word = text.split(" ")[len(short[:-3].split(" "))]
    assert not fits(short[:-3] + " " + next_word + "...", 1)


def test_shortening_a_gsm7_text_never_makes_it_ucs2() -> None:
    short = shorten("x " * 200, 1)
    assert short.endswith("...") and "…" not in short
    assert measure(short).encoding == "gsm7"


def test_shortening_a_ucs2_text_uses_the_ellipsis_character() -> None:
    text = " ".join(["слово"] * 40)
    short = shorten(text, 1)
    assert short.endswith("…")
    assert measure(short).count == 1
    assert all(word == "слово" for word in short[:-1].split(" "))


def test_shortening_drops_dangling_punctuation_before_the_ellipsis() -> None:
    text = "Tariffs: " + ", ".join(["Start", "Smart", "Max"] * 30)
    short = shorten(text, 1)
    assert not short[:-3].endswith((",", " "))


def test_shortening_respects_the_budget_in_segments() -> None:
    text = " ".join(["lorem"] * 200)
    for budget in (1, 2, 3):
        short = shorten(text, budget)
        assert measure(short).count == budget


def test_shortening_counts_extension_characters_double() -> None:
    text = " ".join(["€€€€"] * 40)  # 40 words of 8 septets
    short = shorten(text, 1)
    assert measure(short).units <= 160
    assert short[:-3].split(" ") == ["€€€€"] * len(short[:-3].split(" "))


def test_a_first_word_longer_than_the_budget_gives_only_the_ellipsis() -> None:
    assert shorten("x" * 400, 1) == "..."
