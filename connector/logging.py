"""A logging filter that redacts secrets (tokens, client secrets, auth headers) from every record.

Code never logs a secret on purpose; this is the net for a library or a traceback that does
(for example a request body or URL with ``api_token=`` in it).
"""

import logging

from audit.redaction import REDACTED, redact  # noqa: F401 (re-exported for the connector)


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
