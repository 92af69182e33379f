"""The in-call voicemail parts on their own: the cue-phrase classifier behind pipecat's VoicemailDetector and the
beep detector (a steady tone, not speech or noise)."""

from __future__ import annotations

import numpy as np
from pipecat.extensions.voicemail.voicemail_detector import VOICEMAIL_QUESTION

from pipelines.voicemail import GreetingClassifier, is_tone, looks_like_voicemail

RATE = 8000


def tone(freq: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_voicemail_cues_and_call_screening() -> None:
    assert looks_like_voicemail("Hi, you've reached Sam. Please leave a message after the tone.")
    assert looks_like_voicemail("The person you are calling is not available.")
    assert not looks_like_voicemail("Hello? Who is this?")
    # A screening prompt wants the caller to speak: a conversation, not a mailbox.
    assert not looks_like_voicemail("Please say your name and why you are calling.")


async def test_the_classifier_answers_the_extensions_question() -> None:
    classifier = GreetingClassifier()
    answers = await classifier.choice("You have reached the voicemail of Ada", {"voicemail": VOICEMAIL_QUESTION})
    assert answers["voicemail"].choice == "voicemail"
    answers = await classifier.choice("Hello, Ada speaking", {"voicemail": VOICEMAIL_QUESTION})
    assert answers["voicemail"].choice == "conversation"


def test_a_beep_is_a_tone_and_speech_or_noise_is_not() -> None:
    window = RATE // 25
    assert is_tone(tone(1000, 0.04), RATE)
    assert is_tone(tone(440, 0.04), RATE)
    rng = np.random.default_rng(1)
    assert not is_tone(rng.normal(0, 4000, window), RATE)
    assert not is_tone(tone(1000, 0.04, amplitude=100), RATE)  # too quiet
    chord = tone(300, 0.04) + tone(700, 0.04) + tone(1100, 0.04) + tone(1900, 0.04)  # vowel-like harmonics
    assert not is_tone(chord, RATE)
