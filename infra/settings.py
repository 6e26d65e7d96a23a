"""The one settings tree, built once in ``main`` and passed down; nothing else reads the env.

Every value can be set as ``INTAKE_<SECTION>__<NAME>`` (for example
``INTAKE_KAFKA__BOOTSTRAP_SERVERS``) or in a ``.env`` file in the working directory.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sinks.collage import CollageSettings
from sinks.mail import SmtpSettings
from sinks.replies.settings import ReplySettings
from streams.chasing import ChasingSettings
from streams.classify.classifier import ClassifierSettings
from streams.cluster.logic import ClusterSettings
from streams.deadlines import DeadlineSettings

__all__ = [
    "BlobSettings",
    "BrokerSettings",
    "CallsSettings",
    "ConnectorSettings",
    "DatabaseSettings",
    "ImapSettings",
    "KafkaSettings",
    "RecorderSettings",
    "Settings",
    "TwilioSettings",
    "TwitterSettings",
    "WebSettings",
    "WorkerSettings",
    "load_settings",
]

#: Secrets left at this value are refused when ``env`` is ``production``.
PLACEHOLDER_SECRET = "change-me"


class KafkaSettings(BaseModel):
    """Where the pipeline's Kafka is, and how its topics are made."""

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "alo153-intake"
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    request_timeout_s: float = Field(default=30.0, gt=0)

    def client_options(self) -> dict[str, object]:
        """Keyword arguments shared by every aiokafka client of the product."""
        options: dict[str, object] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": int(self.request_timeout_s * 1000),
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        return options

    @property
    def uses_tls(self) -> bool:
        """Whether the broker is reached over TLS (``SSL`` or ``SASL_SSL``)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context that verifies the broker against the system's CAs."""
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


class BrokerSettings(BaseModel):
    """The bundled single-node Apache Kafka (KRaft, combined broker + controller)."""

    host: str = "127.0.0.1"
    port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    heap_mb: int = Field(default=512, ge=128)
    java: str = "java"
    mvn: str = "mvn"
    start_timeout_s: float = Field(default=90.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)
    #: Where the broker's data, config, jars and log live; default ``<data_dir>/kafka``.
    home: Path | None = None


class DatabaseSettings(BaseModel):
    """The case store. SQLite under the data directory unless a URL is given."""

    url: SecretStr | None = None
    echo: bool = False


class BlobSettings(BaseModel):
    """The content-addressed attachment store (a local directory by default)."""

    dir: Path | None = None
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)


class WebSettings(BaseModel):
    """The web server: operator/field/CİMER intake API (later webhooks and console)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8153, ge=1, le=65535)
    #: The URL the outside world uses to reach this server (behind a proxy it differs).
    public_url: str | None = None
    api_token: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_photos: int = Field(default=10, ge=0)
    publish_timeout_s: float = Field(default=15.0, gt=0)


class WorkerSettings(BaseModel):
    """The Faust worker."""

    app_id: str = "alo153-intake"
    retry_attempts: int = Field(default=3, ge=0)
    retry_backoff_s: float = Field(default=0.5, ge=0)
    #: How long the group waits for a silent (e.g. killed) worker before giving its partitions away.
    session_timeout_s: float = Field(default=30.0, ge=6)
    commit_interval_s: float = Field(default=2.8, gt=0)
    #: How long a send may wait to share a produce request: 0 costs a request per event.
    producer_linger_s: float = Field(default=0.005, ge=0, le=1)
    #: Largest batch of records to one partition. A send waits while its partition's batch is
    #: full and the previous one is still at the broker: with Kafka's 16 KB that stalled the
    #: agents for about a quarter of a busy run. Below the broker's 1 MB message.max.bytes.
    producer_max_batch_bytes: int = Field(default=256 * 1024, ge=16 * 1024, le=900 * 1024)
    log_level: Literal["debug", "info", "warn", "error"] = "info"


class RecorderSettings(BaseModel):
    """``intake record``: the case store's writer on ``intake.cases``, in its own process."""

    #: Its consumer group; default ``<worker.app_id>-recorder`` (see ``sinks.recorder.group_id``).
    group_id: str | None = None
    #: Records per ``getmany`` batch: one store transaction and one offset commit each.
    max_records: int = Field(default=500, ge=1)
    poll_timeout_s: float = Field(default=1.0, gt=0)
    #: The broker holds a fetch until this much is there or ``fetch_wait_s`` has passed, so
    #: that a steady trickle is stored in batches, not a transaction every few records (the
    #: store is not on the way to the units: a case shows up there at most this much later).
    fetch_min_bytes: int = Field(default=256 * 1024, ge=1)
    fetch_wait_s: float = Field(default=0.25, gt=0, le=5)
    #: While the store (or the dead-letter topic) is unreachable: wait, doubling, up to the max.
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)


class ImapSettings(BaseModel):
    """The e-mail box (IMAP). Configured when ``host`` and ``username`` are set."""

    host: str | None = None
    port: int = Field(default=993, ge=1, le=65535)
    ssl: bool = True
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    mailbox: str = "INBOX"
    #: Processed mail is moved here (created when missing); None keeps it in place, flagged.
    processed_folder: str | None = None
    processed_flag: str = "$Alo153Islendi"
    poll_interval_s: float = Field(default=60.0, gt=0)
    #: Re-issue IDLE before servers drop it (RFC 2177: at most 29 minutes).
    idle_timeout_s: float = Field(default=300.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)

    @property
    def configured(self) -> bool:
        """Whether this connector should run."""
        return bool(self.host and self.username)


class TwilioSettings(BaseModel):
    """The WhatsApp hotline through Twilio. Configured when ``auth_token`` is set."""

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    #: The webhook's public URL as Twilio calls it (signatures are made over this URL).
    public_url: str | None = None
    api_base_url: str = "https://api.twilio.com"
    media_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    media_types: tuple[str, ...] = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/heic",
        "application/pdf",
        "video/mp4",
        "audio/ogg",
    )
    media_timeout_s: float = Field(default=20.0, gt=0)
    media_attempts: int = Field(default=3, ge=1)

    @property
    def configured(self) -> bool:
        """Whether the webhook should accept requests."""
        return self.auth_token is not None


class TwitterSettings(BaseModel):
    """Mentions of the municipality's X account. Configured when both token and user id are set."""

    bearer_token: SecretStr | None = None
    user_id: str | None = None
    #: Override of the API host (tests point tweepy at a local server).
    api_base_url: str | None = None
    poll_interval_s: float = Field(default=60.0, gt=0)
    page_size: int = Field(default=100, ge=5, le=100)

    @property
    def configured(self) -> bool:
        """Whether this connector should run."""
        return bool(self.bearer_token and self.user_id)


class CallsSettings(BaseModel):
    """Alo 153 call-centre records. Configured when ``drop_dir`` is set."""

    drop_dir: Path | None = None
    #: Where finished files are moved; default ``<drop_dir>/islenen``.
    processed_dir: Path | None = None
    #: Asterisk ``Master.csv`` (cdr_csv) joined by call id for times and disposition.
    cdr_file: Path | None = None
    poll_interval_s: float = Field(default=5.0, gt=0)
    #: Records per batch (one Kafka acknowledgement and one cursor save each).
    batch_size: int = Field(default=100, ge=1)

    @property
    def configured(self) -> bool:
        """Whether this connector should run."""
        return self.drop_dir is not None


class ConnectorSettings(BaseModel):
    """What every channel connector shares, and each channel's own section."""

    #: Cursors, outboxes and health per connector; default ``<data_dir>/connectors``.
    state_dir: Path | None = None
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    #: How often the outbox is retried while Kafka is unreachable.
    relay_interval_s: float = Field(default=2.0, gt=0)
    #: A channel silent for longer than this raises an alarm on ``intake.alarms``.
    silence_alarm_after_s: float = Field(default=6 * 3600.0, gt=0)
    imap: ImapSettings = ImapSettings()
    whatsapp: TwilioSettings = TwilioSettings()
    twitter: TwitterSettings = TwitterSettings()
    calls: CallsSettings = CallsSettings()


class Settings(BaseSettings):
    """Everything the product can be told, in one tree."""

    model_config = SettingsConfigDict(
        env_prefix="INTAKE_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    kafka: KafkaSettings = KafkaSettings()
    broker: BrokerSettings = BrokerSettings()
    db: DatabaseSettings = DatabaseSettings()
    blobs: BlobSettings = BlobSettings()
    web: WebSettings = WebSettings()
    worker: WorkerSettings = WorkerSettings()
    recorder: RecorderSettings = RecorderSettings()
    connectors: ConnectorSettings = ConnectorSettings()
    deadlines: DeadlineSettings = DeadlineSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    cluster: ClusterSettings = ClusterSettings()
    mail: SmtpSettings = SmtpSettings()
    chasing: ChasingSettings = ChasingSettings()
    replies: ReplySettings = ReplySettings()
    collage: CollageSettings = CollageSettings()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env != "production":
            return self
        secrets = {
            "INTAKE_WEB__API_TOKEN": self.web.api_token,
            # The salt of the hashed citizen keys in the clustering window: a known salt
            # makes those hashes reversible by trying every phone number.
            "INTAKE_CLUSTER__SALT": self.cluster.salt,
            # Signs the expiring links to collages sent to citizens.
            "INTAKE_REPLIES__MEDIA_LINK_SECRET": self.replies.media_link_secret,
        }
        for name, secret in secrets.items():
            if secret.get_secret_value() in (PLACEHOLDER_SECRET, ""):
                raise ValueError(f"{name} must be set to a real secret in production")
        return self

    # Derived locations: one place decides where things live under the data directory.
    @property
    def broker_home(self) -> Path:
        """Directory of the bundled broker (jars, config, KRaft log, server log)."""
        return (self.broker.home or self.data_dir / "kafka").resolve()

    @property
    def blob_dir(self) -> Path:
        """Directory of the content-addressed blob store."""
        return (self.blobs.dir or self.data_dir / "blobs").resolve()

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the case store."""
        if self.db.url is not None:
            return self.db.url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'cases.sqlite3').resolve()}"

    @property
    def connector_state_dir(self) -> Path:
        """Where connectors keep their cursors, outboxes and health."""
        return (self.connectors.state_dir or self.data_dir / "connectors").resolve()

    @property
    def public_base_url(self) -> str:
        """Where citizens and providers reach the web server (links in replies)."""
        return (self.web.public_url or f"http://{self.web.host}:{self.web.port}").rstrip("/")

    @property
    def faust_data_dir(self) -> Path:
        """Where the Faust worker keeps its local state."""
        return (self.data_dir / "worker").resolve()


def load_settings(**overrides: object) -> Settings:
    """Build the settings tree from the environment, ``.env`` and explicit overrides."""
    return Settings(**overrides)  # type: ignore[arg-type]
