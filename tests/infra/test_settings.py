import pytest
from pydantic import ValidationError

from infra.settings import Settings


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("INTAKE_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("INTAKE_DB__URL", "postgresql+psycopg://u:pa55-Wx7q@db/intake")
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None)
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.database_url.endswith("@db/intake")
    assert "pa55-Wx7q" not in repr(settings)  # secrets are SecretStr
    assert settings.blob_dir == (tmp_path / "blobs").resolve()


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None)
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'cases.sqlite3'}"


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("INTAKE_WEB__PORT=9999\n")
    assert Settings(_env_file=env_file).web.port == 9999


def test_placeholder_secrets_refused_in_production() -> None:
    real = {
        "web": {"api_token": "s3cr3t-value"},
        "cluster": {"salt": "pepper-1"},
        "replies": {"media_link_secret": "link-key-1"},
    }
    for section, name in [
        ("web", "API_TOKEN"),
        ("cluster", "CLUSTER__SALT"),
        ("replies", "MEDIA_LINK_SECRET"),
    ]:
        others = {k: v for k, v in real.items() if k != section}
        with pytest.raises(ValidationError, match=name):
            Settings(_env_file=None, env="production", **others)
    Settings(_env_file=None, env="production", **real)
    Settings(_env_file=None, env="development")  # placeholders are fine off production
