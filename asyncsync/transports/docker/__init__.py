"""The ``docker://`` transport: images in a registry speaking the Distribution API."""
