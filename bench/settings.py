"""Settings for benchmark runs: the product settings plus a bare comparison view.

Only ``ROOT_URLCONF`` changes, so the receiver is measured exactly as configured in
production; ``bench.urls`` adds the bare view beside the product URLconf.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
