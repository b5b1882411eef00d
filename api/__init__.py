"""The edges: the FastAPI app, REST routes, /ws, the web page and the `allin` command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("allin")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
