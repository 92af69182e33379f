"""Carriers (Twilio, Vobiz): webhooks, signatures, call markup, status codes, REST clients, call tokens and phone
numbers. Shared by the voice server and the backend, and holds no app state.

`base.py` is the interface; one module per carrier implements it; `registry.py` names them. Tests point
`CarrierCredentials.api_base_url` at the fake carrier (voice_server/testing/fake_carrier.py).
"""
