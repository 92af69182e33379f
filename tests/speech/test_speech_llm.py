"""The embedded LLM server answers OpenAI chat completions, streaming, with the prompt prefix cached."""

from __future__ import annotations

import httpx
import openai

from voicectl.speech_auth import speech_token


async def test_streaming_chat_completion(llm_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{llm_url}/v1", api_key=speech_token("tests"))
    messages = [
        {"role": "system", "content": "You are a helpful receptionist. Answer in one short sentence."},
        {"role": "user", "content": "Hello, are you open on Saturday?"},
    ]
    pieces: list[str] = []
    stream = await client.chat.completions.create(
        model="smollm2-135m-instruct", messages=messages, stream=True, max_tokens=24, temperature=0
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    await client.close()
    assert len(pieces) > 1, "tokens arrive one by one"
    assert "".join(pieces).strip()

    async with httpx.AsyncClient(base_url=llm_url, headers={"Authorization": f"Bearer {speech_token('tests')}"}) as http:
        health = (await http.get("/health")).json()
        models = (await http.get("/v1/models")).json()
        metrics = (await http.get("/metrics")).text
    assert health == {"status": "ok", "model": "smollm2-135m-instruct", "prompt_cache": True}
    assert models["data"][0]["id"] == "smollm2-135m-instruct"
    assert 'llm_time_to_first_byte_seconds_count{path="/v1/chat/completions"}' in metrics


async def test_completion_after_a_tool_result(llm_url: str) -> None:
    """Regression: Pipecat sends the tool call as an assistant message without `content` (and may send `null` or
    text parts); SmolLM2's chat template concatenates `message['content']`, so the completion after a tool result
    failed with "'dict object' has no attribute 'content'" (speech/llm/tool_turns.py)."""
    tools = [{"type": "function", "function": {
        "name": "opening_hours", "description": "The opening hours of a day.",
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]}}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "opening_hours", "arguments": '{"day": "sat"}'}}
    history = [{"role": "system", "content": "You are a receptionist. Answer in one short sentence."},
               {"role": "user", "content": [{"type": "text", "text": "Are you open on Saturday?"}]}]
    async with httpx.AsyncClient(base_url=llm_url, timeout=60,
                                 headers={"Authorization": f"Bearer {speech_token('tests')}"}) as http:
        for assistant in ({"role": "assistant", "tool_calls": [call]},
                          {"role": "assistant", "content": None, "tool_calls": [call]}):
            messages = [*history, assistant, {"role": "tool", "tool_call_id": "call_1", "content": '{"open": "9-12"}'}]
            resp = await http.post("/v1/chat/completions", json={
                "model": "smollm2-135m-instruct", "messages": messages, "tools": tools, "max_tokens": 16,
                "temperature": 0})
            assert resp.status_code == 200, resp.text
            assert resp.json()["choices"][0]["message"]["content"].strip()


async def test_a_developer_message_mid_conversation(llm_url: str) -> None:
    """Regression: Pipecat prompts the LLM with a `developer` message after a barge-in that carried no words;
    llama-cpp-python's request model refused that role with a 500, and the call ended in error."""
    messages = [{"role": "system", "content": "You are a receptionist. Answer in one short sentence."},
                {"role": "assistant", "content": "Hello, how can I help you today?"},
                {"role": "developer", "content": "The user interrupted you but said nothing. Ask them to repeat."}]
    async with httpx.AsyncClient(base_url=llm_url, timeout=60,
                                 headers={"Authorization": f"Bearer {speech_token('tests')}"}) as http:
        resp = await http.post("/v1/chat/completions", json={
            "model": "smollm2-135m-instruct", "messages": messages, "max_tokens": 16, "temperature": 0})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"].strip()
