"""The real-time `/ws` endpoint: text turns (and voice) over one WebSocket. Protocol: docs/websocket.md."""
