// Voice: the microphone → 16 kHz PCM16 binary frames on /ws (AudioWorklet downsampling), and
// playback of the answer's audio at the rate of the last `audio_format` frame (scheduled buffers).
// Barge-in: playback stops the moment the user starts talking or presses stop.

import { toast } from "./ui.js";

const WORKLET_URL = "/static/js/mic-worklet.js";
const HOLD_TO_TALK_MS = 600;       // a press longer than this is push-to-talk: releasing ends the utterance
const BARGE_IN_RMS = 0.03;         // loudness (0..1) that counts as the user talking over the answer
const BARGE_IN_CHUNKS = 2;         // …for this many 40 ms chunks in a row
const DEFAULT_RATE = 24000;        // until the server announces its rate

export class Voice extends EventTarget {
  /**
   * @param {{button: HTMLButtonElement, status: HTMLElement, meter: HTMLElement, connect: () => Promise<any>}} opts
   * `connect` resolves with a ready ChatSocket. Events: "bargein" (the user talked over an answer).
   */
  constructor({ button, status, meter, connect }) {
    super();
    this.button = button;
    this.status = status;
    this.meter = meter;
    this.connect = connect;
    this.recording = false;
    this.starting = false;
    this.stopRequested = false;
    this.draining = false;
    this.discarding = false;       // after an interrupt, until the server acknowledges it
    this.socket = null;
    this.rate = DEFAULT_RATE;
    this.playCtx = null;
    this.nextAt = 0;
    this.sources = new Set();
    this.loudChunks = 0;
    this.pressStart = 0;
    this.pressStarted = false;
    this.#wire();
  }

  #wire() {
    const { button } = this;
    button.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || this.recording || this.starting) return;
      this.pressStart = performance.now();
      this.pressStarted = true;
      this.start();
    });
    button.addEventListener("click", () => {
      if (this.pressStarted) {
        // The press started recording: a long hold was push-to-talk, a short click leaves it on.
        this.pressStarted = false;
        if (performance.now() - this.pressStart > HOLD_TO_TALK_MS) this.stop();
        return;
      }
      if (this.recording || this.starting) this.stop();
      else this.start();
    });
  }

  get supported() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
  }

  async start() {
    if (this.recording || this.starting) return;
    if (!this.supported) {
      toast("Voice needs a secure page (https or localhost) and a browser with AudioWorklet.", { kind: "error" });
      return;
    }
    this.starting = true;
    this.stopRequested = false;
    this.#ui("starting");
    this.#bargeIn(); // the user is about to talk
    try {
      this.socket = await this.connect();
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      this.ctx = new AudioContext();
      await this.ctx.audioWorklet.addModule(WORKLET_URL);
      const source = this.ctx.createMediaStreamSource(this.stream);
      this.worklet = new AudioWorkletNode(this.ctx, "mic-downsampler", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1 });
      // A silent sink keeps the graph pulling the worklet in every browser.
      const mute = this.ctx.createGain();
      mute.gain.value = 0;
      source.connect(this.worklet).connect(mute).connect(this.ctx.destination);
      this.worklet.port.onmessage = (ev) => this.#onChunk(ev.data);
      if (this.ctx.state === "suspended") await this.ctx.resume();
      this.recording = true;
      this.starting = false;
      this.#ui("recording");
      if (this.stopRequested) this.stop();
    } catch (err) {
      this.starting = false;
      this.#release();
      this.#ui("idle");
      const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      toast(denied ? "Microphone access was refused. Allow it in the browser to talk to Allin."
        : `Could not start the microphone: ${err && err.message ? err.message : err}`, { kind: "error" });
    }
  }

  #onChunk(data) {
    if (data.flushed) { this.flushWaiter?.(); return; }
    if (!(this.recording || this.draining) || !this.socket) return;
    this.socket.sendBinary(data.pcm);
    this.#level(data.rms);
    if (this.sources.size) {
      this.loudChunks = data.rms > BARGE_IN_RMS ? this.loudChunks + 1 : 0;
      if (this.loudChunks >= BARGE_IN_CHUNKS) this.#bargeIn();
    }
  }

  /** The user talks over the answer: silence it here; listeners stop it at the server. */
  #bargeIn() {
    const wasPlaying = this.playing;
    this.stopPlayback();
    this.dispatchEvent(new CustomEvent("bargein", { detail: { wasPlaying } }));
  }

  /** End the utterance: send what the worklet still holds, then `audio_end`. */
  async stop() {
    if (this.starting) { this.stopRequested = true; return; }
    if (!this.recording) return;
    this.recording = false;
    this.#ui("idle");
    if (this.worklet) {
      const flushed = new Promise((resolve) => { this.flushWaiter = resolve; window.setTimeout(resolve, 150); });
      this.draining = true; // the flushed tail still goes out
      this.worklet.port.postMessage("flush");
      await flushed;
      this.draining = false;
    }
    this.socket?.send({ type: "audio_end" });
    this.#release();
  }

  #release() {
    try { this.worklet?.port.close(); } catch { /* ignore */ }
    this.stream?.getTracks().forEach((t) => t.stop());
    this.ctx?.close().catch(() => {});
    this.worklet = null;
    this.stream = null;
    this.ctx = null;
    this.#level(0);
  }

  /** Stop everything (chat switched, socket closed). */
  stopAll() {
    if (this.recording) {
      this.recording = false;
      this.#release();
      this.#ui("idle");
    }
    this.stopPlayback();
  }

  // --- playback ---------------------------------------------------------------------------------

  setFormat(rate) {
    const n = Number(rate);
    if (Number.isFinite(n) && n >= 3000 && n <= 192000) this.rate = n;
  }

  enqueueBase64(data) {
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
    this.enqueuePcm(bytes.buffer);
  }

  enqueuePcm(buffer) {
    if (!buffer || buffer.byteLength < 2 || this.discarding) return;
    if (!this.playCtx) this.playCtx = new AudioContext();
    const ctx = this.playCtx;
    if (ctx.state === "suspended") ctx.resume().catch(() => {});
    const pcm = new Int16Array(buffer, 0, Math.floor(buffer.byteLength / 2));
    const audio = ctx.createBuffer(1, pcm.length, this.rate);
    const channel = audio.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) channel[i] = pcm[i] / 32768;
    const src = ctx.createBufferSource();
    src.buffer = audio;
    src.connect(ctx.destination);
    // Back to back: each piece starts where the last one ends (a little lead when starting fresh).
    const startAt = Math.max(this.nextAt, ctx.currentTime + 0.05);
    src.start(startAt);
    this.nextAt = startAt + audio.duration;
    this.sources.add(src);
    src.addEventListener("ended", () => {
      this.sources.delete(src);
      if (!this.sources.size) this.button.classList.remove("speaking");
    });
    this.button.classList.add("speaking");
  }

  stopPlayback() {
    for (const src of this.sources) {
      try { src.stop(); } catch { /* already stopped */ }
    }
    this.sources.clear();
    this.nextAt = 0;
    this.loudChunks = 0;
    this.button.classList.remove("speaking");
  }

  get playing() {
    return this.sources.size > 0;
  }

  // --- UI -------------------------------------------------------------------------------------

  #ui(state) {
    const on = state === "recording";
    this.button.setAttribute("aria-pressed", String(on || state === "starting"));
    this.button.setAttribute("aria-label", on ? "Stop talking (sends what you said)" : "Talk to Allin");
    this.button.classList.toggle("recording", on);
    this.button.classList.toggle("starting", state === "starting");
    this.status.hidden = state === "idle";
    this.status.querySelector(".voice-text").textContent = state === "starting" ? "Starting the microphone…" : "Listening… Allin answers when you pause. Click the mic to stop.";
  }

  #level(rms) {
    // CSSOM (not a style attribute), which the CSP allows.
    const scale = Math.min(1, Math.sqrt(rms || 0) * 2.2);
    for (const [i, bar] of [...this.meter.children].entries()) {
      const wobble = 0.55 + 0.45 * Math.abs(Math.sin(i * 1.7 + performance.now() / 120));
      bar.style.transform = `scaleY(${Math.max(0.12, scale * wobble)})`;
    }
  }
}
