"""What the ASR server says it did, from its /metrics (a unique module name: tests/ is not a package)."""

from __future__ import annotations

import urllib.request

from stack_helpers import AsrServer


def config_rpcs(asr: AsrServer) -> float:
    """How many GetRivaSpeechRecognitionConfig calls the server has answered."""
    with urllib.request.urlopen(f"{asr.health_url}/metrics") as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("asr_requests_total") and "GetRivaSpeechRecognitionConfig" in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0
