"""The app under uvicorn with zero-latency models, for bench/ws_load.py (run as a separate process)."""

import resource
import sys

from allin.config import load_settings
from allin.logging import setup_logging
from api.app import create_app
from api.server import serve
from bench._fakes import HashEmbedder, InstantChatModel


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = int(sys.argv[1])
    settings = load_settings(ALLIN_PORT=port)
    setup_logging("WARNING")
    app = create_app(settings, chat_model=InstantChatModel(), embedder=HashEmbedder())
    serve(app, settings, backlog=2048)  # as `allin serve` runs it


if __name__ == "__main__":
    main()
