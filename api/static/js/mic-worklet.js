// AudioWorklet: microphone samples (the context's native rate, often 48 kHz) → 16 kHz mono PCM16
// little-endian, posted to the page in 40 ms chunks with their loudness (for the meter and barge-in).
// Decimation averages the input samples of each output period (a box filter), which keeps most
// aliasing out of the speech band without a heavier FIR.

const TARGET_RATE = 16000;
const CHUNK_SAMPLES = 640; // 40 ms at 16 kHz

class MicDownsampler extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample (`sampleRate` is the worklet global)
    this.phase = 0;
    this.sum = 0;
    this.count = 0;
    this.out = new Int16Array(CHUNK_SAMPLES);
    this.filled = 0;
    this.energy = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.flush();
        this.port.postMessage({ flushed: true });
      }
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const left = channels[0];
    const right = channels.length > 1 ? channels[1] : null;
    for (let i = 0; i < left.length; i += 1) {
      this.sum += right ? (left[i] + right[i]) * 0.5 : left[i];
      this.count += 1;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        const value = Math.max(-1, Math.min(1, this.sum / this.count));
        this.sum = 0;
        this.count = 0;
        this.energy += value * value;
        this.out[this.filled] = value < 0 ? Math.round(value * 0x8000) : Math.round(value * 0x7fff);
        this.filled += 1;
        if (this.filled === CHUNK_SAMPLES) this.flush();
      }
    }
    return true;
  }

  flush() {
    if (this.filled === 0) return;
    const pcm = this.out.slice(0, this.filled).buffer; // Int16Array is little-endian on every platform browsers run on
    const rms = Math.sqrt(this.energy / this.filled);
    this.port.postMessage({ pcm, rms }, [pcm]);
    this.filled = 0;
    this.energy = 0;
  }
}

registerProcessor("mic-downsampler", MicDownsampler);
