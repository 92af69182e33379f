"""The one place a call's pipeline is put together, from the typed agent config.

    transport in -> DTMF as text -> STT (Riva) -> user aggregator (Silero VAD + smart-turn v3.2 + barge-in policy
    + silence reminders) -> LLM (OpenAI-compatible, tools) -> TTS (project client; greeting pre-synthesised)
    -> transport out (paced to the carrier, clear on accepted barge-in, marks) -> speech tracker
    -> assistant aggregator

Observers record the call (stereo WAV), time every turn and count usage. Shared models and clients come in
through `CallServices`; nothing heavy is created per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_mute import BaseUserMuteStrategy, MuteUntilFirstBotCompleteUserMuteStrategy
from pipecat.turns.user_stop import (
    BaseUserTurnStopStrategy,
    SpeechTimeoutUserTurnStopStrategy,
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from core.agent_config import AgentConfig
from core.call_events import ResolvedAgent
from core.egress import EgressPolicy
from core.knowledge.retriever import Retriever
from core.redaction import Redactor
from pipelines.call_worker import CallWorker
from pipelines.control import CallControl, CallEventSink
from pipelines.degradation import DegradationPolicy, PromptClips, degradation_texts
from pipelines.flows import FlowRun
from pipelines.ivr import PhoneMenu
from pipelines.keypad import Keypad, collect_digits_tool, send_digits_tool
from pipelines.knowledge import KnowledgeInjector, search_knowledge_tool
from pipelines.llm import OpenAIClientPool, PooledOpenAILLMService, create_llm_service, tool_choice_param
from pipelines.llm_chain import FallbackLLMService, llm_chain_args
from pipelines.observers import CallClock, LatencyObserver
from pipelines.processors import AudioEnd, BotSpeechTracker, PreparedAudio
from pipelines.resilience import BreakerRegistry
from pipelines.resilience import breakers as process_breakers
from pipelines.shared_models import SharedModels
from pipelines.silence import SilencePolicy
from pipelines.speculative_replies import TrackedAggregatorPair
from pipelines.speech import SpeechFactory
from pipelines.streaming import StreamingAudio
from pipelines.stt_chain import FallbackRivaSTTService, stt_chain_args
from pipelines.takeover import AgentGate
from pipelines.tools import ToolContext, ToolRegistration, build_tools, register_tools
from pipelines.transcript import TranscriptWriter
from pipelines.tts_chain import TTSVoiceFrame, tts_chain_args, voice_frame
from pipelines.turn_end import TextAwareTurnStopStrategy
from pipelines.turns import BargeInStartStrategy, SpeculativeTurnStopStrategy
from pipelines.voicemail import InCallVoicemail


@dataclass
class CallServices:
    """Process-wide: shared models, connection pools and platform defaults."""

    models: SharedModels
    llm_pool: OpenAIClientPool
    speech: SpeechFactory
    http: httpx.AsyncClient
    llm_base_url: str
    llm_model: str
    # Tenants' URLs (webhook tools, custom TTS endpoints): only through the egress guard (core/egress.py).
    tenant_http: httpx.AsyncClient
    egress: EgressPolicy | None = None  # for the agent's own STT servers (gRPC); None: they are not reached
    vad_start_secs: float = 0.2
    vad_stop_secs: float = 0.2
    vad_min_volume: float = 0.0
    smart_turn: bool = True
    speculative_llm: bool = False  # start the reply on the pause/final transcript before the turn end (turns.py)
    speculate_at_pause: bool = False  # ... on the pause transcript as it arrives, before the VAD hears the stop
    llm_prefill: bool = False  # evaluate the next turn's prompt prefix while the agent speaks (llm_chain.py)
    turn_text_fallback_s: float = 0.0  # > 0: smart-turn's "incomplete" waits this long if the text reads complete
    turn_unsure_probability: float = 0.0  # > 0: ... or if smart-turn's probability of complete was at least this
    observers_skip_audio: bool = False  # audio frames reach observers only around a turn end (call_worker.py)
    # Degradation chains: one circuit breaker per endpoint (process-wide) and pre-recorded prompt clips.
    breakers: BreakerRegistry = field(default_factory=process_breakers)
    clips: PromptClips | None = None
    retriever: Retriever | None = None  # knowledge bases; None: agents answer from their prompt alone


@dataclass
class CallSpec:
    call_id: str
    agent: AgentConfig
    org_id: str = ""  # whose knowledge bases the agent may read
    knowledge_version: int | None = None  # ResolvedAgent.knowledge_version: how new the table's local copy must be
    variables: dict[str, str] = field(default_factory=dict)
    # The organisation secrets the agent names (endpoint keys, tool headers), decrypted for this call only.
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    in_sample_rate: int = 8000
    out_sample_rate: int = 8000
    # PCM at out_sample_rate, synthesised (or still being synthesised) before the socket opened
    prepared_greeting: bytes | StreamingAudio | None = None
    speak_greeting: bool = True  # False when a dropped stream reconnects mid-call
    outbound: bool = False  # we placed the call: in-call voicemail detection applies (agent.voicemail)


@dataclass
class CallPipeline:
    worker: PipelineWorker
    context: LLMContext
    user: LLMUserAggregator
    assistant: LLMAssistantAggregator
    stt: STTService
    llm: PooledOpenAILLMService
    tts: TTSService
    speech: BotSpeechTracker
    barge_in: BargeInStartStrategy
    latency: LatencyObserver
    transcript: TranscriptWriter
    gate: AgentGate  # closed while a supervisor has taken the call over
    clock: CallClock
    system_prompt: str
    greeting: str  # empty when no greeting is to be spoken (none configured, or a reconnect)
    protect_greeting: bool
    observers: list[BaseObserver]
    flow: FlowRun | None = None  # the agent's flow, when it is one (pipelines/flows.py)
    voicemail: InCallVoicemail | None = None  # outbound with in-call detection (pipelines/voicemail.py)
    speculation: SpeculativeTurnStopStrategy | None = None  # SPECULATIVE_LLM: its guesses, counted for the metrics


def _stop_strategies(services: CallServices) -> list[BaseUserTurnStopStrategy]:
    analyzer = services.models.turn_analyzer(SmartTurnParams(stop_secs=2.0)) if services.smart_turn else None
    if analyzer is not None:
        if services.speculative_llm:
            return [SpeculativeTurnStopStrategy(turn_analyzer=analyzer, text_fallback_s=services.turn_text_fallback_s,
                                                unsure_probability=services.turn_unsure_probability,
                                                at_pause=services.speculate_at_pause)]
        if services.turn_text_fallback_s > 0:
            return [TextAwareTurnStopStrategy(turn_analyzer=analyzer, text_fallback_s=services.turn_text_fallback_s,
                                              unsure_probability=services.turn_unsure_probability)]
        return [TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)]
    return [SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.6)]


def build_call_pipeline(
    transport: BaseTransport,
    spec: CallSpec,
    services: CallServices,
    control: CallControl,
    events: CallEventSink,
) -> CallPipeline:
    agent = spec.agent
    system_prompt, greeting = agent.render(spec.variables)

    degradation = DegradationPolicy(agent, spec.call_id, control, events)
    if services.clips is not None:
        services.clips.ensure(degradation_texts(agent))
    org = spec.org_id or None  # the platform's speech servers are asked on this organisation's behalf
    stt = services.speech.stt(agent.stt, sample_rate=spec.in_sample_rate, org=org, **stt_chain_args(
        agent.stt, services.speech.riva_server, breakers=services.breakers, policy=degradation,
        message=agent.degradation_message_stt, egress=services.egress, secrets=spec.secrets))
    tts = services.speech.tts(agent.tts, sample_rate=spec.out_sample_rate, org=org, **tts_chain_args(
        agent.tts, default_url=services.speech.tts_url, breakers=services.breakers, policy=degradation,
        clips=services.clips, canned_reply=agent.llm.canned_reply, tenant_http=services.tenant_http,
        secrets=spec.secrets))
    prepared = PreparedAudio(tts)
    if spec.prepared_greeting and greeting:
        prepared.add(greeting, spec.prepared_greeting)
    llm = create_llm_service(agent.llm, services.llm_pool, services.llm_base_url, services.llm_model,
                             system_prompt, **llm_chain_args(
                                 agent.llm, services.llm_base_url, services.llm_model,
                                 breakers=services.breakers, policy=degradation, secrets=spec.secrets))

    clock = CallClock()
    latency = LatencyObserver(clock, stt=stt, llm=llm, tts=tts, transport_out=transport.output())
    transcript = TranscriptWriter(spec.call_id, events, latency, Redactor(agent.redaction))
    knowledge = agent.knowledge if agent.knowledge.knowledge_base_ids and services.retriever else None

    tool_ctx = ToolContext(agent=agent, call_id=spec.call_id, control=control, events=events,
                           http=services.tenant_http, secrets=spec.secrets)
    registrations = build_tools(tool_ctx)
    if knowledge is not None and knowledge.mode == "tool" and services.retriever is not None:
        registrations.append(search_knowledge_tool(tool_ctx, services.retriever, spec.org_id, transcript.knowledge,
                                                   version=spec.knowledge_version))

    def on_digits(digits: str) -> None:
        silence.note_activity()
        transcript.dtmf(digits)

    dtmf = Keypad(on_digits=on_digits, on_sensitive=transcript.keep_secret)
    if agent.collect_digits is not None:
        registrations.append(collect_digits_tool(tool_ctx, dtmf, agent.collect_digits))
    if agent.enable_send_digits:
        registrations.append(send_digits_tool(tool_ctx))
    # A flow offers tools per node through its FlowManager (pipelines/flows.py); a single prompt offers them all.
    tools = register_tools(llm, registrations) if agent.flow is None else None
    context = LLMContext()
    if tools is not None:
        context.set_tools(tools)
        choice = tool_choice_param(agent.llm)
        if choice is not None:
            context.set_tool_choice(choice)  # type: ignore[arg-type]

    interruption = agent.interruption
    barge_in = BargeInStartStrategy(
        interruptions=interruption.enabled,
        min_words=interruption.min_words,
        resume_on_false_interruption=interruption.resume_on_false_interruption,
        false_interruption_timeout_s=interruption.false_interruption_timeout_s,
    )
    # Outbound with a phone menu to work first: the navigator takes the LLM's place and the greeting waits for
    # the hand-over (pipelines/ivr.py); in-call voicemail detection does not run then.
    menu = None
    if spec.outbound and agent.phone_menu is not None and agent.flow is None and spec.speak_greeting:
        menu = PhoneMenu(agent.phone_menu, llm, tool_ctx, greeting, agent.llm.endpoint.timeout_s)
    mute: list[BaseUserMuteStrategy] = []
    if greeting and spec.speak_greeting and interruption.protect_greeting and menu is None:
        mute.append(MuteUntilFirstBotCompleteUserMuteStrategy())
    stops = _stop_strategies(services)
    speculation = next((s for s in stops if isinstance(s, SpeculativeTurnStopStrategy)), None)
    aggregators = TrackedAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=services.models.vad(VADParams(start_secs=services.vad_start_secs,
                                                       stop_secs=services.vad_stop_secs,
                                                       min_volume=services.vad_min_volume)),
            user_turn_strategies=UserTurnStrategies(start=[barge_in], stop=stops),
            user_mute_strategies=mute,
            user_idle_timeout=agent.silence.reminder_after_s,
        ),
    )
    user, assistant = aggregators.user(), aggregators.assistant()

    transcript.attach(user, assistant, before_caller_turn=dtmf.spoken)  # a number said instead of typed
    if services.llm_prefill and isinstance(llm, FallbackLLMService):
        llm.prefill_after_turns(assistant, context)
    gate = AgentGate()
    silence = SilencePolicy(agent.silence, control, gate)
    silence.attach(user)

    speech = BotSpeechTracker()
    voicemail = None
    if spec.outbound and agent.voicemail.detect_in_call and spec.speak_greeting and menu is None:
        message = agent.fill(agent.voicemail.message, spec.variables)
        voicemail = InCallVoicemail(agent.voicemail, message, lambda text, detail: control.end_call(
            "voicemail", goodbye=text, detail=detail))
        if isinstance(stt, FallbackRivaSTTService):  # interims while undecided: a cue in them decides early
            stt.screening = True
            voicemail.on_decided = stt.stop_screening
    if isinstance(stt, FallbackRivaSTTService):  # a speculative reply starts on the ASR's pause transcript
        stt.pause_transcripts = services.speculative_llm and services.smart_turn
    injector = (KnowledgeInjector(services.retriever, spec.org_id, knowledge, transcript.knowledge,
                                  version=spec.knowledge_version)
                if knowledge is not None and knowledge.mode == "inject" and services.retriever is not None else None)
    pipeline = Pipeline([
        transport.input(),
        dtmf,
        *([voicemail.beeps] if voicemail else []),
        stt,
        *([voicemail.detector] if voicemail else []),
        *([injector.tap] if injector else []),  # final transcripts start the retrieval before the turn ends
        user,  # caller audio ends here: its VAD was the last reader (TrackedUserAggregator)
        gate,
        *([injector] if injector else []),
        *(menu.processors if menu else [llm]),
        tts,
        *([voicemail.detector.gate()] if voicemail else []),
        transport.output(),
        AudioEnd(),  # agent audio: sent, and seen by the observers as the transport pushed it
        speech,
        assistant,
    ])

    # The recording is fed by the transport itself (voice_server/media), not an observer: an observer costs two
    # queued events per frame per hop.
    observers: list[BaseObserver] = [latency]

    worker = CallWorker(
        pipeline,
        skip_audio=services.observers_skip_audio,
        params=PipelineParams(
            audio_in_sample_rate=spec.in_sample_rate,
            audio_out_sample_rate=spec.out_sample_rate,
            enable_metrics=True,
            enable_usage_metrics=True,
        ),
        clock=clock,
        observers=observers,
        enable_rtvi=False,
        idle_timeout_secs=None,
        conversation_id=spec.call_id,
        name=f"call-{spec.call_id}",
    )
    flow = None
    if agent.flow is not None:
        def agent_tools(target: ResolvedAgent) -> list[ToolRegistration]:
            return build_tools(ToolContext(agent=target.config, call_id=spec.call_id, control=control, events=events,
                                           http=services.tenant_http, secrets=target.secret_values()))

        def agent_voice(target: ResolvedAgent) -> TTSVoiceFrame:
            return voice_frame(target.config.tts, services.speech.tts_url, target.secret_values())

        flow = FlowRun(agent.flow, call_id=spec.call_id, goodbye=agent.goodbye, tools=registrations,
                       variables={**agent.variables, **spec.variables}, control=control, events=events,
                       agent_tools=agent_tools, agent_voice=agent_voice)
        flow.attach(worker, llm, context, aggregators)
    return CallPipeline(worker=worker, context=context, user=user, assistant=assistant, stt=stt, llm=llm,
                        tts=tts, speech=speech, barge_in=barge_in, latency=latency, transcript=transcript,
                        gate=gate, clock=clock, system_prompt=system_prompt,
                        greeting=greeting if spec.speak_greeting and menu is None else "",
                        protect_greeting=interruption.protect_greeting, observers=observers, flow=flow,
                        voicemail=voicemail, speculation=speculation)


def opening_frames(call: CallPipeline) -> list[Any]:
    """What the agent says first: the greeting (protected from barge-in if configured)."""
    if not call.greeting:
        return []
    frame = TTSSpeakFrame(call.greeting, append_to_context=True)
    # Held by in-call voicemail detection, the greeting must stay interruptible: a voicemail verdict that comes
    # before its speech is synthesised (an early cue, a beep, the carrier's AMD) interrupts it, or it would play to
    # the machine once the gate opens.
    if call.protect_greeting and call.voicemail is None:
        frame.interruptible = False
    return [frame]
