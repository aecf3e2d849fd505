"""The ``oci-archive:`` transport: a tar file of an OCI image layout."""
