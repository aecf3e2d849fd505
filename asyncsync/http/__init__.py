"""The HTTP layer under the registry client and the Harbor API client.

* :mod:`asyncsync.http.session` - :class:`~asyncsync.http.session.HttpSession`: the run's one
  aiohttp session, proxies, per-host request slots, retry policy, and ``send`` (redirects, and
  ``Authorization`` never sent to another origin);
* :mod:`asyncsync.http.errors` - the one place where an aiohttp exception or an error answer
  becomes an asyncsync error;
* :mod:`asyncsync.http.tls` - TLS settings per host (verification, cert dirs);
* :mod:`asyncsync.http.proxies` - proxies from the environment, resolved once per origin.

It knows nothing of registries: no auth challenges, no Distribution API paths.
"""
