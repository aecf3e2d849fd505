"""The ``containers-storage:`` transport: images in podman/buildah/CRI-O storage, through podman."""
