"""Test doubles that follow the protocol reference: the telephony simulator and the fake carrier REST API."""
