"""Structured logs for the daemon: one JSON object per line on stderr (or plain text).

Every line passes through ``redact_url`` after formatting, so a URL with credentials cannot
reach the log even if some library puts it in a message or an exception.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from ..redact import redact_url

_FIELDS = ("camera", "event", "person", "track", "run", "delay_s")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return redact_url(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def configure_daemon_logging(fmt: str = "json", debug: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler],
                        force=True)
    # libraries' chatter stays at warning
    for noisy in ("urllib3", "PIL", "matplotlib", "alembic", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
