"""``tarball:FILE[:FILE...]``: filesystem tarballs as a read-only image, one layer per file, as skopeo."""
