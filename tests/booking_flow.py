"""The three-step booking flow the flow tests share (greet -> collect date and name -> confirm -> end).

Every node forces one function with `tool_choice`, so even the embedded SmolLM2 model moves through it: llama.cpp
turns a named tool choice into a JSON grammar, the model only fills in the arguments.
"""

from __future__ import annotations

from typing import Any

BOOKING_FLOW: dict[str, Any] = {
    "start_node": "greet",
    "nodes": [
        {"name": "greet", "task_prompt": "The caller wants to book a table. Call start_booking.",
         "tool_choice": "start_booking", "reset_context": True,
         "transitions": [{"to": "collect", "function": "start_booking",
                          "description": "The caller wants to make a booking."}]},
        {"name": "collect", "say": "Sure. What day, and what name should I put it under?",
         "task_prompt": "Read the caller's last message. Call save_collect with the day of the booking and "
                        "the caller's name, copied from the caller's words.",
         "collect": [{"name": "date", "description": "The day of the week the caller asked for",
                      "choices": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]},
                     {"name": "name", "description": "The caller's first name"}],
         "tool_choice": "save_collect", "reset_context": True, "transitions": [{"to": "confirm"}]},
        {"name": "confirm", "say": "A table for {{name}} on {{date}}. Is that right?",
         "task_prompt": "Did the caller say yes? Call save_confirm with confirmed true for yes, false for no.",
         "collect": [{"name": "confirmed", "type": "boolean", "description": "true if the caller said yes"}],
         "tool_choice": "save_confirm", "reset_context": True,
         "transitions": [{"to": "end", "when": {"variable": "confirmed", "equals": "true"}}, {"to": "collect"}]},
        {"name": "end", "task_prompt": "The booking is done.", "say": "You are booked. Goodbye!", "end": True},
    ],
}
