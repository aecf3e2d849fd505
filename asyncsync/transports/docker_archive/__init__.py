"""The ``docker-archive:`` transport: the ``docker save`` / ``docker load`` tar format."""
