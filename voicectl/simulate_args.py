"""Arguments of `voicectl simulate` (kept free of heavy imports so the CLI starts fast)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--carrier", choices=["twilio", "vobiz"], default="twilio")
    parser.add_argument("--format", choices=["mulaw_8k", "l16_8k", "l16_16k"], default=None,
                        help="Vobiz stream format (asked for on the answer URL)")
    parser.add_argument("--concurrency", type=int, default=1, help="calls at the same time")
    parser.add_argument("--turns", type=int, default=3, help="questions per call")
    parser.add_argument("--barge-in-after", type=float, default=None,
                        help="after the questions, talk over the agent this many seconds into its answer")
    parser.add_argument("--dtmf", default="", help="keys to press at the end, e.g. 12#")
    parser.add_argument("--voice-url", default=None, help="default: VOICE_SERVER_URL")
    parser.add_argument("--backend-url", default=None, help="default: BACKEND_URL (used to set up a line)")
    parser.add_argument("--tts-url", default=None, help="default: TTS_URL (synthesises the caller)")
    parser.add_argument("--to", default=None, help="an existing number (skips setting up a line)")
    parser.add_argument("--account-id", default=None, help="with --to: the carrier account to sign webhooks with")
    parser.add_argument("--auth-token", default=None, help="with --to: its auth token")
    parser.add_argument("--json", dest="json_out", default=None, help="write the results here")
