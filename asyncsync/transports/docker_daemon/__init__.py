"""The ``docker-daemon:`` transport: images in a Docker engine, through its Engine API."""
