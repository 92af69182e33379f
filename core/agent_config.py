"""The agent configuration: one typed model shared by the backend (storage, API, UI) and pipelines/ (the call).

Everything a call needs to behave is here, so the voice server never reads loose dicts.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from core.agent_flow import AgentFlow
from core.agent_tests import Scenario
from core.redaction import RedactionConfig
from core.schema_patterns import pattern_problem

E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$", examples=["+14155550123"])]
_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
# What {{name}} can refer to; such keys are also stored as MongoDB field names, where '.' and a leading '$' fail.
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# The name of an organisation secret (backend/services/secrets.py); the agent holds names, never values.
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EndpointOptions(StrictModel):
    """How to reach one AI service. `api_key_ref` names an org secret; keys never live in the agent."""

    base_url: str | None = Field(default=None, description="Empty: the platform default from settings.")
    model: str | None = None
    api_key_ref: SecretName | None = Field(default=None, description="Name of an organisation secret holding the key.")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class STTConfig(StrictModel):
    provider: Literal["riva"] = "riva"
    endpoint: EndpointOptions = EndpointOptions()
    language: str = "en-US"
    boosted_words: list[str] = Field(default_factory=list, max_length=100)
    boost_score: float = Field(default=4.0, ge=0, le=100)
    fallbacks: list[EndpointOptions] = Field(
        default_factory=list, max_length=3,
        description="Riva servers (host:port) tried in order when the primary fails, also mid-call; when all "
                    "fail the agent says degradation_message_stt and transfers (or ends) the call.")


class LLMConfig(StrictModel):
    provider: Literal["openai_compatible"] = "openai_compatible"
    endpoint: EndpointOptions = EndpointOptions()
    temperature: float = Field(default=0.6, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=1, le=4096)
    context_token_budget: int | None = Field(
        default=3000, ge=256, le=1_000_000,
        description="Most (estimated) tokens sent per request: in long calls older turns are dropped, with a note "
                    "that keeps earlier tool results; the system prompt always stays. None: no limit.")
    fallbacks: list[EndpointOptions] = Field(
        default_factory=list, max_length=3,
        description="OpenAI-compatible endpoints/models tried in order when the primary errors or sends no "
                    "first token within its timeout_s.")
    canned_reply: str = Field(
        default="I'm sorry, I'm having trouble right now. Let me get someone to help you.", max_length=1000,
        description="Said when every LLM endpoint fails (and when no TTS works, from a pre-recorded clip); then "
                    "the call goes to the first transfer target, or ends.")
    # "auto": the model decides; "none": no tool calls; "required": some tool on every reply; a tool's name
    # (end_call, transfer_call, a webhook tool): every reply calls that tool. Servers such as llama.cpp's enforce
    # a named tool with a JSON grammar, which is what makes a small model reliable for single-purpose agents.
    tool_choice: str = Field(default="auto", pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")


class TTSConfig(StrictModel):
    provider: Literal["voiceagent_tts"] = "voiceagent_tts"
    endpoint: EndpointOptions = EndpointOptions()
    engine: Literal["piper", "xtts"] = "piper"
    voice: str = "en_US-joe-medium"
    speed: float = Field(default=1.0, ge=0.5, le=2.0)
    fallbacks: list[EndpointOptions] = Field(
        default_factory=list, max_length=3,
        description="TTS servers tried in order; `model` picks the engine (e.g. xtts -> piper). After them: "
                    "pre-recorded prompt clips, then a transfer (or the end of the call).")


class InterruptionConfig(StrictModel):
    enabled: bool = True
    min_words: int = Field(default=1, ge=0, le=10, description="Words the caller must say to interrupt.")
    protect_greeting: bool = True
    resume_on_false_interruption: bool = True
    false_interruption_timeout_s: float = Field(default=1.0, ge=0.2, le=5)


class SilenceConfig(StrictModel):
    reminder_after_s: float = Field(default=8.0, ge=1, le=120)
    reminder_text: str = "Are you still there?"
    max_reminders: int = Field(default=2, ge=0, le=10)
    hangup_text: str = "I haven't heard from you, so I'll end the call now. Goodbye!"


class ToolParameterSchema(StrictModel):
    """A JSON-schema object describing the tool's arguments."""

    model_config = ConfigDict(extra="allow")
    type: Literal["object"] = "object"
    properties: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")], dict[str, Any]] = Field(
        default_factory=dict)
    required: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _storable(self) -> ToolParameterSchema:
        # Stored as a MongoDB document, where a key with '.' or a leading '$', or an integer beyond 64 bits, fails
        # the write (500s found by fuzzing).
        def problem(value: Any) -> str | None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if "." in str(key) or str(key).startswith("$") or "\x00" in str(key):
                        return f"key {str(key)!r}: keys may not contain '.' or start with '$'"
                    if (found := problem(item)) is not None:
                        return found
            elif isinstance(value, list):
                return next((found for item in value if (found := problem(item)) is not None), None)
            elif isinstance(value, int) and not -(2 ** 63) <= value < 2 ** 63:
                return f"{value}: integers must fit in 64 bits"
            return None

        schema = self.model_dump()
        if (found := problem(schema)) is not None or (found := pattern_problem(schema)) is not None:
            raise ValueError(found)
        return self


class WebhookTool(StrictModel):
    kind: Literal["webhook"] = "webhook"
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
    description: str = Field(min_length=1, max_length=1024)
    url: HttpUrl
    method: Literal["GET", "POST"] = "POST"
    parameters: ToolParameterSchema = ToolParameterSchema()
    timeout_s: float = Field(default=5.0, gt=0, le=30)
    filler_phrase: str | None = Field(default="One moment while I check that.", max_length=200)
    speak_result: Literal["llm", "verbatim"] = Field(
        default="llm",
        description='"llm": the model reads the answer and replies. "verbatim": the answer (a text/plain body, or '
                    'the "say" field of a JSON one) is spoken as it is, with no further model turn: exact wording '
                    "for confirmations, and reliable with small models that do not restate a tool's answer.")
    headers_secret_ref: SecretName | None = Field(
        default=None, description='Org secret holding extra request headers as a JSON object, e.g. '
                                  '{"Authorization": "Bearer ..."}.')

    @field_validator("parameters")
    @classmethod
    def _required_are_declared(cls, v: ToolParameterSchema) -> ToolParameterSchema:
        missing = [r for r in v.required if r not in v.properties]
        if missing:
            raise ValueError(f"required parameters not in properties: {missing}")
        return v


class KnowledgeConfig(StrictModel):
    """Which knowledge bases the agent answers from, and how (see docs/knowledge-base.md)."""

    knowledge_base_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(
        default_factory=list, max_length=10)
    mode: Literal["inject", "tool"] = Field(
        default="inject", description="inject: on each caller turn the best chunks go into the LLM context before "
                                      "it answers; tool: the LLM calls search_knowledge when it needs to.")
    top_k: int = Field(default=3, ge=1, le=10)
    score_threshold: float = Field(default=0.3, ge=0, le=1, description="Chunks scoring lower are left out.")
    filters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")],
                  Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-.:@ ]{1,100}$")]] = Field(
        default_factory=dict, max_length=10, description='Only chunks whose source has these metadata values, '
                                                         'e.g. {"branch": "Downtown"}.')
class ContextWebhook(StrictModel):
    """Called with the caller's number before the greeting (inbound and outbound); the JSON object it returns
    fills {{variables}} in the prompt and greeting. On a timeout or an error the call goes on without it."""

    url: HttpUrl
    timeout_ms: int = Field(default=800, ge=50, le=3000, description="The greeting waits at most this long.")
    headers_secret_ref: SecretName | None = Field(
        default=None, description="Org secret holding extra request headers as a JSON object.")


_EXTRACTABLE = {"string", "number", "integer", "boolean"}


class AnalysisConfig(StrictModel):
    """After the call, the LLM reads the transcript and returns one JSON object: a summary, the fields of
    `extraction_schema`, and whether the call met `success_rubric`. The answer is constrained to that JSON shape by
    the LLM server's JSON mode (a grammar on llama.cpp), so even the embedded small model returns valid JSON; the
    quality of what it writes there is the model's."""

    summary_prompt: str = Field(default="Summarise the call in two sentences.", min_length=1, max_length=2000)
    extraction_schema: ToolParameterSchema | None = Field(
        default=None, description='A JSON-schema object of flat fields, e.g. {"type": "object", "properties": '
                                  '{"appointment_date": {"type": "string"}, "callback_requested": {"type": "boolean"}}}')
    success_rubric: str | None = Field(default=None, max_length=2000,
                                       description="When the call counts as a success, e.g. 'an appointment was booked'.")

    @field_validator("extraction_schema")
    @classmethod
    def _flat_fields(cls, schema: ToolParameterSchema | None) -> ToolParameterSchema | None:
        # Flat typed fields: one CSV column each, and small enough for a small model's grammar.
        for name, spec in (schema.properties.items() if schema else []):
            kind = spec.get("type")
            if kind not in _EXTRACTABLE:
                raise ValueError(f"field {name!r}: type must be one of {sorted(_EXTRACTABLE)}")
            if "enum" in spec and (not isinstance(spec["enum"], list) or not spec["enum"]):
                raise ValueError(f"field {name!r}: enum must be a non-empty list")
        if schema is not None and not schema.properties:
            raise ValueError("extraction_schema needs at least one property")
        return schema

    def answer_schema(self) -> dict[str, Any]:
        """The JSON schema the LLM's answer must match."""
        properties: dict[str, Any] = {"summary": {"type": "string"}}
        if self.success_rubric:
            properties["success"] = {"type": "boolean"}
        if self.extraction_schema is not None:
            fields = self.extraction_schema.model_dump()
            properties["data"] = {"type": "object", "properties": fields["properties"],
                                  "required": list(fields["properties"])}
        return {"type": "object", "properties": properties, "required": list(properties)}


class TransferTarget(StrictModel):
    name: str = Field(min_length=1, max_length=64)
    phone_number: E164
    description: str = ""
    mode: Literal["blind", "warm"] = "blind"
    whisper_brief: bool = Field(default=True, description="Warm transfer: read a brief to the human first.")


@dataclass(frozen=True)
class SecretRef:
    path: str  # where in the config, e.g. "llm.fallbacks[0].api_key_ref"
    name: str
    use: Literal["key", "headers"]  # a bearer key, or a JSON object of HTTP headers


class DigitCollection(StrictModel):
    """The collect_digits tool: the caller types a number on the keypad (or says it) while the tool waits."""

    max_digits: int = Field(default=6, ge=1, le=32, description="Entry ends when this many digits are in.")
    end_key: Literal["#", "*", ""] = Field(default="#", description="Ends the entry early; empty: none.")
    timeout_s: float = Field(default=10.0, ge=1, le=60, description="Whole entry; then the tool returns what it has.")
    sensitive: bool = Field(default=False, description="Digits are masked in transcripts, events and logs.")
    description: str = Field(default="Ask the caller to type a number on their phone keypad, e.g. a booking "
                                     "number, and wait for it.", min_length=1, max_length=500)


class VoicemailConfig(StrictModel):
    """Outbound calls: decide in the call whether a person or a voicemail answered (pipelines/voicemail.py)."""

    detect_in_call: bool = Field(default=False, description="Hold the agent's speech until it is decided.")
    message: str = Field(default="Hello, this is a message from us. Please call us back. Goodbye!",
                         min_length=1, max_length=1000, description="Left after the beep; may use {{variables}}.")
    no_beep_wait_s: float = Field(default=2.0, ge=0.5, le=10,
                                  description="A greeting with no beep: the message starts after this much quiet.")
    decision_silence_s: float = Field(default=1.0, ge=0.3, le=5,
                                      description="Quiet after the callee speaks before the verdict acts.")
    quick_person_silence_s: float = Field(
        default=0.5, ge=0.2, le=5, description="A short answer with no voicemail cue (\"Hello?\"): decided a person "
                                               "after this much quiet instead of decision_silence_s.")


class PhoneMenuConfig(StrictModel):
    """Outbound calls that may reach an automated phone menu: pipecat's IVR navigator works it towards `goal`
    with keypad tones, then hands over to the normal conversation (pipelines/ivr.py)."""

    goal: str = Field(min_length=3, max_length=500, description="What to reach, e.g. 'the billing department'.")
    keys: str = Field(default="0123456789*#", pattern=r"^[0-9*#]{1,12}$",
                      description="The keys the navigator may press (e.g. leave out 0 to never ask for an operator).")
    constrain_output: bool = Field(
        default=True, description="Constrain the LLM's replies to the navigator's commands with a llama.cpp "
                                  "grammar: for the embedded server (others ignore or refuse `grammar`).")


class AgentConfig(StrictModel):
    """The behaviour of one agent version."""

    system_prompt: str = Field(
        default="You are a helpful, concise phone assistant. Answer in one or two short sentences.",
        min_length=1,
        max_length=20000,
        description="May contain {{variables}} filled from campaign contact fields.",
    )
    greeting: str = Field(default="Hello! How can I help you today?", max_length=1000)
    goodbye: str = Field(default="Thank you for calling. Goodbye!", max_length=1000)
    language: str = "en-US"
    variables: dict[VariableName, str] = Field(default_factory=dict, description="Defaults for prompt variables.")
    stt: STTConfig = STTConfig()
    llm: LLMConfig = LLMConfig()
    tts: TTSConfig = TTSConfig()
    interruption: InterruptionConfig = InterruptionConfig()
    silence: SilenceConfig = SilenceConfig()
    max_duration_s: int = Field(default=900, ge=30, le=4 * 3600)
    tools: list[WebhookTool] = Field(default_factory=list, max_length=32)
    analysis: AnalysisConfig | None = Field(default=None, description="Post-call analysis; None: off.")
    context_webhook: ContextWebhook | None = Field(
        default=None, description="Pre-call lookup (e.g. your CRM): its answer fills {{variables}}.")
    enable_end_call: bool = True
    transfer_targets: list[TransferTarget] = Field(default_factory=list, max_length=16)
    record: bool = True
    knowledge: KnowledgeConfig = KnowledgeConfig()
    redaction: RedactionConfig = Field(default_factory=RedactionConfig,
                                       description="PII kept out of transcripts, webhooks and logs (core/redaction.py).")
    degradation_message_stt: str = Field(
        default="I'm having trouble hearing you.", max_length=1000,
        description="Said when no speech recognition endpoint works; then the call is transferred or ended.")
    collect_digits: DigitCollection | None = Field(default=None, description="Offer the collect_digits tool.")
    voicemail: VoicemailConfig = VoicemailConfig()
    enable_send_digits: bool = Field(default=False, description="Offer the send_digits tool: keypad tones to the "
                                                                "other party, e.g. to work a phone menu.")
    phone_menu: PhoneMenuConfig | None = Field(default=None, description="Outbound: navigate a phone menu first.")
    flow: AgentFlow | None = Field(default=None, description="A multi-step flow instead of the single prompt "
                                                             "(core/agent_flow.py); system_prompt is its role.")
    test_scenarios: list[Scenario] = Field(
        default_factory=list, max_length=50,
        description="The agent's test suite (core/agent_tests.py), versioned with it; the editor's Run tests.")

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: list[WebhookTool]) -> list[WebhookTool]:
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tool names: {dupes}")
        return tools

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> AgentConfig:
        offered = self.tool_names()
        choice = self.llm.tool_choice
        if choice not in ("auto", "none", "required") and choice not in offered:
            raise ValueError(f"llm.tool_choice {choice!r} is not one of the agent's tools {sorted(offered)}")
        if choice == "required" and not offered:
            raise ValueError("llm.tool_choice 'required' needs at least one tool")
        return self

    @model_validator(mode="after")
    def _flow_runs(self) -> AgentConfig:
        if self.flow is not None and (problems := self.flow.problems(self.tool_names())):
            raise ValueError("flow: " + "; ".join(problems))
        return self

    def tool_names(self) -> set[str]:
        """Names of the tools the LLM is offered (webhooks, end_call, transfer_call)."""
        names = {t.name for t in self.tools}
        if self.enable_end_call:
            names.add("end_call")
        if self.transfer_targets:
            names.add("transfer_call")
        if self.knowledge.knowledge_base_ids and self.knowledge.mode == "tool":
            names.add("search_knowledge")
        if self.collect_digits is not None:
            names.add("collect_digits")
        if self.enable_send_digits:
            names.add("send_digits")
        return names

    def secret_refs(self) -> list[SecretRef]:
        """Every organisation secret this agent names: endpoint keys (fallbacks included) and tool headers."""
        refs = []
        for service in ("stt", "llm", "tts"):
            section = getattr(self, service)
            chain = [("endpoint", section.endpoint), *((f"fallbacks[{i}]", e) for i, e in enumerate(section.fallbacks))]
            refs += [SecretRef(f"{service}.{where}.api_key_ref", e.api_key_ref, "key")
                     for where, e in chain if e.api_key_ref]
        refs += [SecretRef(f"tools[{i}].headers_secret_ref", t.headers_secret_ref, "headers")
                 for i, t in enumerate(self.tools) if t.headers_secret_ref]
        if self.context_webhook and self.context_webhook.headers_secret_ref:
            refs.append(SecretRef("context_webhook.headers_secret_ref", self.context_webhook.headers_secret_ref,
                                  "headers"))
        return refs

    def render(self, values: dict[str, str]) -> tuple[str, str]:
        """System prompt and greeting with {{variables}} filled; unknown ones become empty strings."""
        return self.fill(self.system_prompt, values), self.fill(self.greeting, values)

    def fill(self, text: str, values: dict[str, str]) -> str:
        """`text` with {{variables}} filled from `values` over the agent's defaults; unknown ones become ''."""
        merged = {**self.variables, **values}
        return _VARIABLE.sub(lambda m: _safe(merged.get(m.group(1), "")), text)


def _safe(value: str) -> str:
    # Contact fields come from CSVs: keep them printable and short so they cannot smuggle prompt structure.
    cleaned = "".join(ch for ch in str(value) if ch in string.printable and ch not in "\r\n\t\x0b\x0c")
    return cleaned[:200]
