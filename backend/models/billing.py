"""The price book, per-call cost breakdowns and the organisation's monthly budget, as the API shows them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from backend.models.common import ApiModel

Price = Annotated[float, Field(ge=0, le=1_000_000)]
CarrierKey = Annotated[str, Field(pattern=r"^(twilio|vobiz|browser)$")]
DirectionKey = Annotated[str, Field(pattern=r"^(inbound|outbound)$")]


class LLMPrice(ApiModel):
    input_per_1k: Price = 0.0
    output_per_1k: Price = 0.0


class PriceBook(ApiModel):
    """Unit prices in `currency`. Platform defaults come from PRICE_BOOK (JSON); an organisation may override any
    of them. Self-hosted engines (the embedded ASR/LLM/TTS) are priced by `compute_per_hour` of call time."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    telephony_per_min: dict[CarrierKey, dict[DirectionKey, Price]] = Field(
        default_factory=lambda: {"twilio": {"inbound": 0.0085, "outbound": 0.014},
                                 "vobiz": {"inbound": 0.004, "outbound": 0.006}})
    stt_per_audio_s: Price = 0.0
    llm_default: LLMPrice = LLMPrice()
    llm_by_model: dict[Annotated[str, Field(max_length=128)], LLMPrice] = Field(default_factory=dict, max_length=50)
    tts_per_1k_chars: Price = 0.0
    compute_per_hour: Price = Field(default=0.0, description="Self-hosted engines: cost per hour of call time.")


class CostBreakdown(BaseModel):
    currency: str
    telephony: float
    stt: float
    llm: float
    tts: float
    compute: float
    total: float


class BudgetSettings(ApiModel):
    monthly_budget: Price | None = Field(default=None, description="None: no budget.")
    over_budget_inbound: Literal["answer", "message"] = Field(
        default="answer", description="At the budget: answer inbound calls normally, or play a message and hang up.")
    over_budget_message: str = Field(default="Sorry, we cannot take your call right now. Please try again later.",
                                     min_length=1, max_length=500)


class BillingOut(BaseModel):
    price_book: PriceBook
    budget: BudgetSettings
    month: str
    spent_this_month: float
    over_budget: bool


class CostAnalytics(BaseModel):
    currency: str
    since: date
    until: date
    total: float
    cost_per_minute: float | None = Field(description="Total cost / total minutes of the costed calls.")
    per_day: dict[str, float] = Field(description="By the call's UTC day.")
    per_agent: dict[str, float]
    per_campaign: dict[str, float]
