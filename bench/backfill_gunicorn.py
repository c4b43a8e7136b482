"""gunicorn settings of the sandbox process in bench/backfill.py.

Pipedrive's legacy limit of 10,000 POST/PUT a day per user applies to personal API tokens only; the
benchmark's connection uses the demo API token for simplicity but stands for an OAuth app (the
recommended setup), so that legacy count is lifted in the sandbox process. Every other limit is real.
"""


def post_worker_init(worker):
    from sandbox.pipedrive import guard

    guard.DAILY_WRITES_PER_USER = 10**9
