"""A bad setting stops the start with one line that names it and speaks in its unit."""

import pytest

from order_service.core.config import OrderSettings
from servicekit.settings import load_settings
from user_service.core.config import DEV_CORS_ALLOW_ORIGINS, UserSettings

DATABASE = "sqlite+aiosqlite:///settings-test.db"
TOKEN = "t" * 24


def refusal(capsys: pytest.CaptureFixture[str], cls: type, **values: object) -> str:
    with pytest.raises(SystemExit) as stopped:
        load_settings(cls, **values)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_short_internal_token_is_counted_in_characters_and_not_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = refusal(capsys, UserSettings, database_url=DATABASE, internal_api_token="sekret-5")
    assert "INTERNAL_API_TOKEN: at least 16 characters, got 8" in line
    assert "items" not in line
    assert "sekret-5" not in line


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("max_body_bytes", 10, "MAX_BODY_BYTES: at least 1024 bytes, got 10"),
        ("redis_timeout", 0, "REDIS_TIMEOUT: more than 0 seconds, got 0"),
        ("db_statement_timeout", 301, "DB_STATEMENT_TIMEOUT: at most 300 seconds, got 301"),
        ("access_token_ttl_seconds", 5, "ACCESS_TOKEN_TTL_SECONDS: at least 60 seconds, got 5"),
        ("password_min_length", 3, "PASSWORD_MIN_LENGTH: at least 8 characters, got 3"),
        ("argon2_memory_kib", 1024, "ARGON2_MEMORY_KIB: at least 19456 KiB, got 1024"),
        ("redis_port", 70000, "REDIS_PORT: at most 65535, got 70000"),
    ],
)
def test_a_number_out_of_bounds_is_said_in_its_unit(
    capsys: pytest.CaptureFixture[str], name: str, value: int, says: str
) -> None:
    line = refusal(
        capsys, UserSettings, database_url=DATABASE, internal_api_token=TOKEN, **{name: value}
    )
    assert line == f"configuration error (UserSettings): {says}"


def test_hours_and_missing_settings(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(capsys, OrderSettings, idempotency_ttl_hours=1)
    assert "DATABASE_URL: required, not set" in line
    assert "INTERNAL_API_TOKEN: required, not set" in line
    assert "IDEMPOTENCY_TTL_HOURS: at least 24 hours, got 1" in line


def test_a_wrong_database_url_says_what_is_expected(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(capsys, UserSettings, database_url="mysql://db/x", internal_api_token=TOKEN)
    assert "DATABASE_URL: must be a postgresql+asyncpg:// or sqlite+aiosqlite:// URL" in line
    assert "Value error" not in line


def test_cors_origins_default_to_the_local_order_service() -> None:
    settings = UserSettings(database_url=DATABASE, internal_api_token=TOKEN)
    assert settings.cors_allow_origins == DEV_CORS_ALLOW_ORIGINS
    assert "http://127.0.0.1:8002" in settings.cors_allow_origins
    assert settings.cors_allow_credentials is False


def test_cors_origins_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", " https://shop.example ,http://127.0.0.1:9002,")
    settings = UserSettings(database_url=DATABASE, internal_api_token=TOKEN)
    assert settings.cors_allow_origins == ("https://shop.example", "http://127.0.0.1:9002")
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "")
    assert UserSettings(database_url=DATABASE, internal_api_token=TOKEN).cors_allow_origins == ()


@pytest.mark.parametrize(
    "origin", ["http://localhost:8002/", "http://localhost:8002/docs", "localhost:8002", "ftp://x"]
)
def test_a_cors_origin_must_be_what_a_browser_sends(
    capsys: pytest.CaptureFixture[str], origin: str
) -> None:
    line = refusal(
        capsys,
        UserSettings,
        database_url=DATABASE,
        internal_api_token=TOKEN,
        cors_allow_origins=f"http://127.0.0.1:8002,{origin}",
    )
    assert f"CORS_ALLOW_ORIGINS: {origin!r} is not an origin" in line


def test_any_origin_with_credentials_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = refusal(
        capsys,
        UserSettings,
        database_url=DATABASE,
        internal_api_token=TOKEN,
        cors_allow_origins="*",
        cors_allow_credentials=True,
    )
    assert "CORS_ALLOW_ORIGINS cannot be '*' while CORS_ALLOW_CREDENTIALS is true" in line
    # Any origin without credentials is a choice an operator may make (a public API).
    settings = UserSettings(database_url=DATABASE, internal_api_token=TOKEN, cors_allow_origins="*")
    assert settings.cors_allow_origins == ("*",)
