// Microphone capture for the browser test call: posts each 128-sample render quantum to the page, which resamples
// to 16 kHz PCM16 and sends 20 ms frames. A static file (not a blob: URL) so the backend's CSP (script-src 'self')
// allows it.
class VaCapture extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) this.port.postMessage(ch.slice(0));
    return true;
  }
}
registerProcessor("va-capture", VaCapture);
