"""TwiML and Vobiz XML documents, built with ElementTree so every attribute and text is escaped (a bare `&`
silently drops a Vobiz call with "Invalid Answer XML")."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fastapi import Response

XML_MEDIA_TYPE = "application/xml"
UNAVAILABLE_MESSAGE = "Sorry, we cannot take your call right now. Please try again later. Goodbye."


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


def xml_response(body: str, status_code: int = 200) -> Response:
    return Response(content=body, media_type=XML_MEDIA_TYPE, status_code=status_code)


def twiml_stream(ws_url: str, token: str, status_callback: str | None) -> str:
    """<Connect><Stream> (bidirectional). Twilio drops query strings from the URL, so the token is a <Parameter>."""
    root = ET.Element("Response")
    connect = ET.SubElement(root, "Connect")
    attrs = {"url": ws_url}
    if status_callback:
        attrs |= {"statusCallback": status_callback, "statusCallbackMethod": "POST"}
    stream = ET.SubElement(connect, "Stream", attrs)
    ET.SubElement(stream, "Parameter", {"name": "token", "value": token})
    return _document(root)


def twiml_say_hangup(message: str) -> str:
    root = ET.Element("Response")
    ET.SubElement(root, "Say").text = message
    ET.SubElement(root, "Hangup")
    return _document(root)


def twiml_dial(target_e164: str, caller_id: str | None) -> str:
    root = ET.Element("Response")
    dial = ET.SubElement(root, "Dial", {"callerId": caller_id} if caller_id else {})
    dial.text = target_e164
    return _document(root)


def twiml_conference(room: str, *, say: str | None = None, start_on_enter: bool, end_on_exit: bool,
                     wait_url: str | None = None) -> str:
    root = ET.Element("Response")
    if say:
        ET.SubElement(root, "Say").text = say
    dial = ET.SubElement(root, "Dial")
    attrs = {"startConferenceOnEnter": str(start_on_enter).lower(), "endConferenceOnExit": str(end_on_exit).lower()}
    if wait_url is not None:
        attrs["waitUrl"] = wait_url
    ET.SubElement(dial, "Conference", attrs).text = room
    return _document(root)


def vobiz_stream(ws_url: str, content_type: str, status_callback: str | None) -> str:
    """keepCallAlive keeps the call up while the stream runs; audioTrack must stay inbound with bidirectional."""
    root = ET.Element("Response")
    attrs = {"bidirectional": "true", "audioTrack": "inbound", "keepCallAlive": "true", "contentType": content_type}
    if status_callback:
        attrs |= {"statusCallbackUrl": status_callback, "statusCallbackMethod": "POST"}
    ET.SubElement(root, "Stream", attrs).text = ws_url
    return _document(root)


def vobiz_speak_hangup(message: str) -> str:
    # <Speak>/<Hangup> are the Plivo-family verbs Vobiz inherits (not in our fact sheet; see docs/transfers.md).
    root = ET.Element("Response")
    ET.SubElement(root, "Speak").text = message
    ET.SubElement(root, "Hangup")
    return _document(root)


def vobiz_dial(target_e164: str, caller_id: str | None) -> str:
    root = ET.Element("Response")
    dial = ET.SubElement(root, "Dial", {"callerId": caller_id.lstrip("+")} if caller_id else {})
    ET.SubElement(dial, "Number").text = target_e164.lstrip("+")
    return _document(root)


def empty_twiml() -> str:
    return _document(ET.Element("Response"))
