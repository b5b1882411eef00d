"""Settings: env and .env, and a clear message naming a bad variable."""

import pytest

from allin.config import ConfigError, Settings, load_settings


def test_invalid_values_name_the_variable(monkeypatch):
    monkeypatch.setenv("ALLIN_PORT", "99999")
    with pytest.raises(ConfigError, match="ALLIN_PORT"):
        load_settings()


def test_bad_database_url_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings()


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "CHAT_MODEL", "TOP_K"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".env").write_text("CHAT_MODEL=gemini-2.0-flash\nTOP_K=9\nGOOGLE_API_KEY=abc\n")
    s = Settings()
    assert (s.chat_model, s.top_k, s.mode) == ("gemini-2.0-flash", 9, "gemini")
    assert "abc" not in repr(s)  # secrets never print


def test_offline_by_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    s = Settings()
    assert s.mode == "offline" and s.database_url is None
    assert s.data_path == (tmp_path / "data").resolve()


def test_sqlalchemy_style_url_is_normalised():
    s = Settings(_env_file=None, database_url="postgresql+psycopg://u:p@h:5432/d")
    assert s.database_url == "postgresql://u:p@h:5432/d"
