"""The ``oci:`` transport: an OCI image layout directory holding one or more named images."""
