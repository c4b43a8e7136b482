"""Xero's organisation time zone (``Timezone`` of GET /Organisation) as an IANA zone.

Xero names zones the Windows way, in capitals and without spaces (NEWZEALANDSTANDARDTIME,
CENTRALSTANDARDTIME(MEXICO), UTC+12, UTC02 for "UTC-02"). tzlocal keeps Unicode CLDR's Windows → IANA
map (``tzlocal.windows_tz.win_tz``, keyed "New Zealand Standard Time"); both sides are compared with
only letters, digits and "+" kept, upper-cased.
"""

import zoneinfo

from tzlocal.windows_tz import win_tz

UTC_NAME = "UTC"


def _key(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum() or ch == "+")


# Two zones Xero still lists that Windows (and so CLDR's map) retired: the zones they stood for.
RETIRED_WINDOWS_ZONES = {"KAMCHATKASTANDARDTIME": "Asia/Kamchatka", "MIDATLANTICSTANDARDTIME": "Etc/GMT+2"}
_BY_XERO_KEY = {**RETIRED_WINDOWS_ZONES, **{_key(windows): iana for windows, iana in win_tz.items()}}


def iana_name(xero_timezone: str) -> str:
    """The IANA name of a Xero ``Timezone`` ("" when unknown); an IANA name passes through."""
    name = (xero_timezone or "").strip()
    if not name:
        return ""
    if "/" in name:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return ""
        return name
    return _BY_XERO_KEY.get(_key(name), "")


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of an IANA (or Xero) name; UTC when empty or unknown."""
    iana = iana_name(name)
    try:
        return zoneinfo.ZoneInfo(iana or UTC_NAME)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(UTC_NAME)
