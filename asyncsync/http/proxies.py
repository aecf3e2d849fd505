"""HTTP(S) proxies from the environment, resolved once per origin.

skopeo honours ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``; so does asyncsync. aiohttp's own
``trust_env`` does the same lookup in a worker thread for every request (and also reads
``~/.netrc``, which must never supply registry credentials): measured at about 2 ms of CPU per
image in the 10,000-tag benchmark. :class:`ProxyResolver` reads the environment once and caches the
answer per (scheme, host, port).
"""

from __future__ import annotations

import base64
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

# Present in CPython's urllib.request on every platform, but missing from typeshed.
_bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


class ProxyResolver:
    """``for_url(url) -> (proxy URL or None, proxy headers or None)``, from the environment.

    Credentials in the proxy URL become a ``Proxy-Authorization`` header, sent only to the proxy.
    """

    def __init__(self) -> None:
        self._proxies = urllib.request.getproxies_environment()
        self._cache: dict[tuple[str, str], tuple[str | None, dict[str, str] | None]] = {}

    def for_url(self, url: str) -> tuple[str | None, dict[str, str] | None]:
        if not self._proxies:  # the usual case: no proxy variables, nothing to parse per request
            return None, None
        parts = urlsplit(url)
        scheme, netloc = parts.scheme.lower(), parts.netloc.rsplit("@", 1)[-1]
        key = (scheme, netloc)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._lookup(scheme, netloc, parts.hostname or "")
        return cached

    def _lookup(self, scheme: str, netloc: str, hostname: str) -> tuple[str | None, dict[str, str] | None]:
        proxy = self._proxies.get(scheme)
        if not proxy:
            return None, None
        if _bypass(netloc, self._proxies) or (hostname != netloc and _bypass(hostname, self._proxies)):
            return None, None
        if "://" not in proxy:
            proxy = "http://" + proxy
        parts = urlsplit(proxy)
        headers = None
        if parts.username:
            user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers = {"Proxy-Authorization": "Basic " + base64.b64encode(user_pass).decode()}
            parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1])
        return urlunsplit(parts), headers
