"""Errors the connector raises: broken connections, and the typed errors of the API clients."""


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""


class ConnectionBroken(ConnectorError):
    """The connection needs the admin's attention (reconnect) before it can be used again."""

    def __init__(self, connection_label: str = "", reason: str = "", admin_url: str = ""):
        self.connection_label = connection_label
        self.reason = reason
        self.admin_url = admin_url
        message = f"{connection_label}: {reason}" if connection_label else reason
        if admin_url:
            message += f" Reconnect it on {admin_url}."
        super().__init__(message)


# --- API client errors: one class per way a call can fail, so callers decide retry or defer ---


class AuthExpired(ConnectorError):
    """The service refused our credentials (401) even after one refresh."""


class Forbidden(ConnectorError):
    """403: the token lacks a scope, the tenant is not connected, or a plan limit applies."""

    def __init__(self, message: str = "Forbidden"):
        super().__init__(message)
        self.message = message


class RateLimited(ConnectorError):
    """A limit not worth sleeping through in a worker: retry (or re-enqueue) after ``retry_after`` s."""

    def __init__(self, retry_after: float, message: str = ""):
        super().__init__(message or f"Rate limited; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class NotFound(ConnectorError):
    """404: the record does not exist (or not in this tenant)."""


class ValidationFailed(ConnectorError):
    """400/422: the service rejected the request; ``message`` is the service's own explanation."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class ServerError(ConnectorError):
    """5xx, timeout or connection failure that outlasted the retries."""


class BudgetExhausted(ConnectorError):
    """The daily budget (Xero day limit, Pipedrive token budget) is spent until ``resets_at``."""

    def __init__(self, resets_at, message: str = ""):
        super().__init__(message or f"Daily API budget spent; resets at {resets_at:%Y-%m-%d %H:%M} UTC")
        self.resets_at = resets_at
