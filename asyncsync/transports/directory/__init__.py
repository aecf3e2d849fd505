"""The ``dir:`` transport: skopeo's directory format, one image per directory."""
