"""The in-call voicemail parts on their own: the cue-phrase classifier behind pipecat's VoicemailDetector, the
short-answer rule (a person's "Hello?" is decided after a shorter quiet) and the beep detector (a steady tone, not
speech or noise)."""

from __future__ import annotations

import numpy as np
from pipecat.extensions.voicemail.voicemail_detector import VOICEMAIL_QUESTION
from pipecat.frames.frames import Frame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.tests.utils import SleepFrame, run_test

from core.agent_config import VoicemailConfig
from pipelines.voicemail import (
    GreetingClassifier,
    InCallVoicemail,
    is_short_answer,
    is_tone,
    looks_like_voicemail,
)

RATE = 8000


def tone(freq: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t)


def test_voicemail_cues_and_call_screening() -> None:
    assert looks_like_voicemail("Hi, you've reached Sam. Please leave a message after the tone.")
    assert looks_like_voicemail("The person you are calling is not available.")
    assert looks_like_voicemail("Hi, you reached him.")  # how the ASR often hears "you've reached" in an interim
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


def test_a_short_answer_is_a_few_words_with_no_cue() -> None:
    assert is_short_answer("Hello?") and is_short_answer("Yeah, who's this?")
    assert not is_short_answer("Hi, this is Sam speaking.")  # could be a greeting's first sentence: wait it out
    assert not is_short_answer("Voicemail.") and not is_short_answer("")
    # A screening prompt with "after the tone" in it still wants the caller to speak.
    assert not looks_like_voicemail("The person you are calling uses a screening service. State your name after the tone.")
    assert looks_like_voicemail("Sorry, I can't take your call. I'll call you back.")


async def _heard(frames: list[Frame], quick_s: float = 0.3) -> InCallVoicemail:
    """Runs the call's detector over what the callee said; the full quiet is long so only the quick rule acts."""
    left: list[str] = []

    async def leave(text: str, _detail: str) -> None:
        left.append(text)

    vm = InCallVoicemail(VoicemailConfig(detect_in_call=True, decision_silence_s=5.0, quick_person_silence_s=quick_s),
                         "Please call us back.", leave)
    await run_test(vm.detector, frames_to_send=frames)
    return vm


async def test_a_short_hello_is_decided_a_person_after_the_short_quiet() -> None:
    vm = await _heard([TranscriptionFrame("Hello?", "callee", "now"), SleepFrame(1.0)])
    assert (vm.verdict, vm.decided_by) == ("conversation", "short answer")


async def test_a_longer_answer_with_no_cue_waits_for_the_full_quiet() -> None:
    vm = await _heard([TranscriptionFrame("Hi, this is Sam, Sam Miller, from Portland.", "callee", "now"),
                       SleepFrame(1.0)])
    assert vm.verdict is None  # still undecided: decision_silence_s (5 s here) has not passed


async def test_speech_going_on_starts_the_short_quiet_over() -> None:
    """A greeting's first word, then more words (an interim) before the short quiet is over: no verdict yet."""
    vm = await _heard([TranscriptionFrame("Hi.", "callee", "now"), SleepFrame(0.4),
                       InterimTranscriptionFrame("This is", "callee", "now"), SleepFrame(0.4)], quick_s=0.6)
    assert vm.verdict is None


async def test_a_cue_in_an_interim_decides_voicemail_at_once() -> None:
    vm = await _heard([InterimTranscriptionFrame("Hi, you've reached Sam", "callee", "now"), SleepFrame(0.1)])
    assert (vm.verdict, vm.decided_by) == ("voicemail", "early words")
