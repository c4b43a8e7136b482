"""API clients for Xero and Pipedrive: timeouts, typed errors, retries and shared limits."""
