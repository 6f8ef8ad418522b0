"""What the caller hears when spoken input is not possible: the keys always work."""

from __future__ import annotations

KEYS_NOTICE = {
    "en": "Speech recognition is not available. Please use your keypad.",
    "ru": "Распознавание речи недоступно. Пожалуйста, используйте клавиши телефона.",
    "ko": "음성 인식을 사용할 수 없습니다. 키패드를 사용해 주세요.",
}
LOW_CONFIDENCE_NOTICE = {
    "en": "Sorry, I did not catch that. Please use your keypad.",
    "ru": "Извините, я не расслышал. Пожалуйста, используйте клавиши телефона.",
    "ko": "죄송합니다. 키패드를 사용해 주세요.",
}


def notice(table: dict[str, str], language: str) -> str:
    return table.get(language) or table["en"]
