"""The app under uvicorn with zero-latency models, for bench/ws_load.py (run as a separate process)."""

import resource
import sys

import uvicorn

from allin.config import load_settings
from allin.logging import setup_logging
from api.app import create_app
from bench._fakes import HashEmbedder, InstantChatModel


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = int(sys.argv[1])
    settings = load_settings(ALLIN_PORT=port)
    setup_logging("WARNING")
    app = create_app(settings, chat_model=InstantChatModel(), embedder=HashEmbedder())
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, backlog=2048,
                ws_ping_interval=settings.ws_ping_interval_s, ws_ping_timeout=settings.ws_ping_interval_s)


if __name__ == "__main__":
    main()
