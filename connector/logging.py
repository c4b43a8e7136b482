"""A logging filter that redacts secrets (tokens, client secrets, auth headers) from every record.

Code never logs a secret on purpose; this is the net for a library or a traceback that does
(for example a request body or URL with ``api_token=`` in it).
"""

import logging
import re

REDACTED = "[redacted]"

_PATTERNS = [
    # Authorization: Bearer/Basic <value>
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/=]{8,}"),
    # key=value, key: value, "key": "value" for secret-looking keys
    re.compile(
        r"""(?ix)
        (["']?\b(?:[\w-]*[_-])?(?:access_token|refresh_token|id_token|api_token|x-api-token|client_secret
              |code_verifier|password|token|webhook_key|signing_secret)\b["']?\s*[:=]\s*["']?)
        ([^"'&\s,;}]{6,})
        """
    ),
]


def redact(text: str) -> str:
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _PATTERNS[1].sub(lambda m: f"{m.group(1)}{REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites the message (with its arguments) and any exception text of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
