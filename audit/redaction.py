"""Secrets out of text: tokens, client secrets, passwords and auth headers become "[redacted]".

Used by the logging filter (connector.logging) and by every sync record written (audit.services).
"""

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
