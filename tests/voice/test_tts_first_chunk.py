"""The first words of each reply go to TTS early (FastFirstChunkAggregator): the caller hears the answer start while
the LLM is still writing the sentence, the rest still goes by whole sentences, no text is lost or repeated, and an
interruption starts the next reply fresh."""

from __future__ import annotations

from pipecat.utils.text.base_text_aggregator import Aggregation

from pipelines.processors import FastFirstChunkAggregator


async def feed(aggregator: FastFirstChunkAggregator, tokens: list[str]) -> list[str]:
    """What the TTS service would synthesise for one reply streamed as `tokens` (then flushed at its end)."""
    pieces: list[Aggregation] = []
    for token in tokens:
        pieces += [a async for a in aggregator.aggregate(token)]
    last = await aggregator.flush()
    if last is not None and last.text:
        pieces.append(last)
    return [p.text for p in pieces]


REPLY = ["The", " clinic", " is", " open", " from", " nine", " to", " five", ".", " Call", " us", " any", " time", "."]


async def test_the_first_chunk_goes_after_max_words_and_the_rest_by_sentence() -> None:
    pieces = await feed(FastFirstChunkAggregator(max_words=3), REPLY)
    assert pieces == ["The clinic is", "open from nine to five.", "Call us any time."]


async def test_a_comma_after_min_words_cuts_sooner_and_a_short_sentence_goes_whole() -> None:
    aggregator = FastFirstChunkAggregator(min_words=2, max_words=6)
    assert await feed(aggregator, ["Sure", " thing", ",", " the", " clinic", " is", " open", "."]) == [
        "Sure thing,", "the clinic is open."]
    assert await feed(aggregator, ["Yes", ".", " We", " are", " open", "."]) == ["Yes.", "We are open."]


async def test_each_reply_and_each_interruption_starts_a_fresh_first_chunk() -> None:
    aggregator = FastFirstChunkAggregator(max_words=3)
    assert (await feed(aggregator, REPLY))[0] == "The clinic is"
    async for _ in aggregator.aggregate("Let me check that"):
        pass
    await aggregator.handle_interruption()  # the caller barged in: that text is dropped, nothing carries over
    assert (await feed(aggregator, REPLY))[0] == "The clinic is"


