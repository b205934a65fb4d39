"""Credentials out of URLs before they are logged or stored (webhook, RTSP, database URLs).

Dependency-free on purpose: anything that logs a URL can import it.
"""

from __future__ import annotations

import re

# scheme://userinfo@ ; the userinfo runs to the LAST "@" of the authority (an unencoded "@"
# in a password is common in camera URLs and tools accept it), and stops at what ends an
# authority ("/", "?", "#"), at white space and at the quotes and brackets around a URL
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#'\"<>]*)@")


def _mask(m: re.Match) -> str:
    masked = "***:***@" if ":" in m.group("userinfo") else "***@"
    return m.group("scheme") + masked


def redact_url(text: str) -> str:
    """``text`` (one URL, or any text holding URLs) with the credentials of every
    ``scheme://user:password@host`` replaced by ``***:***@`` (``scheme://user@host``:
    ``***@``, since a lone user part is often a token). Other text is unchanged."""
    return _USERINFO.sub(_mask, str(text))
