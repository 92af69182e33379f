"""Which ASR model a call asks for, against the real ASR server (speech.asr answers Riva's
GetRivaSpeechRecognitionConfig): with no STT_MODEL the server is asked once per server and process and a streaming
model for the agent's language is used; STT_MODEL pins the platform server's model; the chosen name is one the
server accepts, and a language it does not serve is a clear error."""

from __future__ import annotations

import grpc
import pytest
import riva.client
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
from asr_probe import config_rpcs
from stack_helpers import AsrServer

from pipelines.stt_models import NoModelForLanguage, RivaModelCatalog, ServedModel, pick_model
from voicectl.speech_auth import riva_metadata


def auth() -> tuple[tuple[str, str], ...]:
    """The ASR server's credential (a service token) as gRPC call metadata."""
    return tuple((key, value) for key, value in riva_metadata("tests"))


async def test_the_server_is_asked_once_and_its_model_for_the_language_is_used(asr_server: AsrServer) -> None:
    catalog = RivaModelCatalog()
    before = config_rpcs(asr_server)
    async with grpc.aio.insecure_channel(asr_server.address) as channel:
        served = await catalog.served(asr_server.address, channel, auth())
        assert [m.name for m in served] == ["whisper-tiny.en"] and served[0].streaming
        assert await catalog.model_for(asr_server.address, "en-US", channel, auth()) == "whisper-tiny.en"
        assert await catalog.model_for(asr_server.address, "en-GB", channel, auth()) == "whisper-tiny.en"
        with pytest.raises(NoModelForLanguage, match="de-DE.*whisper-tiny.en"):
            await catalog.model_for(asr_server.address, "de-DE", channel, auth())
        assert config_rpcs(asr_server) == before + 1, "cached per server"
        catalog.forget(asr_server.address)
        await catalog.model_for(asr_server.address, "en-US", channel, auth())
        assert config_rpcs(asr_server) == before + 2


async def test_the_chosen_name_is_accepted_and_an_unserved_one_refused(asr_server: AsrServer) -> None:
    async with grpc.aio.insecure_channel(asr_server.address) as channel:
        chosen = await RivaModelCatalog().model_for(asr_server.address, "en-US", channel, auth())
        stub = rasr_grpc.RivaSpeechRecognitionStub(channel)

        async def recognize(model: str) -> rasr.RecognizeResponse:
            config = riva.client.RecognitionConfig(encoding=riva.client.AudioEncoding.LINEAR_PCM, language_code="en-US",
                                                   sample_rate_hertz=16000, audio_channel_count=1, model=model)
            return await stub.Recognize(rasr.RecognizeRequest(config=config, audio=bytes(16000 * 2)), metadata=auth())

        await recognize(chosen)  # one second of silence: no error
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await recognize("whisper-tiny.en-but-not-this-one")  # what the old hard-coded default risked
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_stt_model_pins_the_platform_server_without_asking(asr_server: AsrServer) -> None:
    before = config_rpcs(asr_server)
    catalog = RivaModelCatalog({asr_server.address: "parakeet-0.6b-en-US-asr-streaming"})
    async with grpc.aio.insecure_channel(asr_server.address) as channel:
        assert await catalog.model_for(asr_server.address, "en-US", channel, auth()) == "parakeet-0.6b-en-US-asr-streaming"
    assert config_rpcs(asr_server) == before


def test_a_riva_style_model_list_picks_a_streaming_model_for_the_language() -> None:
    """Real Riva lists offline and streaming models per language (parameters type=offline|online)."""
    served = [ServedModel("parakeet-ctc-en-US-asr-offline", ("en-US",), streaming=False),
              ServedModel("conformer-de-DE-asr-streaming", ("de-DE",), streaming=True),
              ServedModel("parakeet-0.6b-en-US-asr-streaming", ("en-US",), streaming=True)]
    assert pick_model(served, "en-US") == "parakeet-0.6b-en-US-asr-streaming"
    assert pick_model(served, "de-AT") == "conformer-de-DE-asr-streaming"
    with pytest.raises(NoModelForLanguage):
        pick_model(served, "fr-FR")
