"""Test bed for asyncsync's integration tests.

Everything here is self-contained: it never imports ``asyncsync`` and never touches the internet.

* :mod:`tests.helpers.registry` starts real ``docker-registry`` (CNCF distribution 2.8) processes in the
  ``anon``, ``basic``, ``token`` and ``tls`` flavours and reads their access logs.
* :mod:`tests.helpers.token_service` is a Docker token server (GET and OAuth2 POST) whose ES256 JWTs the
  real registry verifies.
* :mod:`tests.helpers.images` builds seeded, deterministic images, manifest lists and OCI indexes and
  pushes them with raw aiohttp.
* :mod:`tests.helpers.certs` makes the throw-away CA, server certificates and token signing keys.

Import these modules as ``tests.helpers.<module>`` (the conftest puts the repository root on ``sys.path``).
"""
