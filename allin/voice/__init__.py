"""Speech for the voice path: local STT/TTS and voice-activity detection used when no Gemini key is set.

- `audio`: PCM16 helpers (conversion, validation, resampling, WAV).
- `vad`: streaming end-of-utterance detection on 16 kHz PCM16.
- `stt`: faster-whisper tiny.en from a packaged model (never downloads).
- `tts`: hibari's packaged "heart" voice (piper as an optional fallback) and text-to-speakable sentences.
- `local`: `LocalSpeech`, both engines behind worker threads for the event loop.
"""
