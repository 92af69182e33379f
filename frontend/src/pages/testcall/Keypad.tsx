/**
 * The browser test call's phone keypad: each press goes to the agent as a DTMF keypress (the socket's `dtmf`
 * message), so keypad flows (collect_digits, "press 1 for…") can be tried without a phone. Digits, * and # typed on
 * the keyboard while the keypad has focus press the same keys. `waiting`: the agent asked for keys (the socket's
 * `keypad` event), said next to the keypad.
 */
import { useState, type KeyboardEvent } from "react";
import { Badge } from "../../components/ui";
import { isKeypadKey, KEYPAD_KEYS } from "../../lib/browserCall";

interface KeypadProps {
  onPress: (key: string) => boolean;
  disabled?: boolean;
  waiting?: boolean;
}

export function Keypad({ onPress, disabled, waiting }: KeypadProps) {
  const [pressed, setPressed] = useState("");

  function press(key: string) {
    if (onPress(key)) setPressed((p) => (p + key).slice(-20));
  }

  function onKeyDown(e: KeyboardEvent<HTMLDivElement>) {
    if (disabled || !isKeypadKey(e.key)) return;
    e.preventDefault();
    press(e.key);
  }

  return (
    <div className="keypad" role="group" aria-label="Keypad" onKeyDown={onKeyDown}>
      <div className="keypad-keys">
        {KEYPAD_KEYS.map((key) => (
          <button key={key} type="button" className="btn keypad-key" disabled={disabled} onClick={() => press(key)}
            aria-label={`Key ${key}`}>
            {key}
          </button>
        ))}
      </div>
      <p className="muted small" aria-live="polite">
        <span className="mono">{pressed ? `Pressed: ${pressed}` : "No keys pressed"}</span>
        {waiting && <> <Badge tone="info">the agent is waiting for keys</Badge></>}
      </p>
    </div>
  );
}
