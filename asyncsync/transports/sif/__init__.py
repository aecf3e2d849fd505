"""``sif:PATH``: a Singularity Image Format file read as a one-layer OCI image (read-only), as skopeo does."""
