"""Foreign (non-distributable) layers are never fetched, so never with credentials.

Their bytes live at the URLs in the manifest (Windows base layers); skopeo leaves them out of a copy by
default and so does asyncsync. The URL here points at a recording proxy: it must see nothing.
"""

from __future__ import annotations

import orjson
import pytest

from asyncsync.registry.client import RegistryOptions
from asyncsync.registry.credentials import Credentials
from tests.conftest import RegistryFactory
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.fault_scenarios import copy_all
from tests.helpers.images import digest_of, make_image, push_blob, push_manifest


@pytest.mark.anyio
async def test_foreign_layers_are_never_fetched(make_registry: RegistryFactory) -> None:
    # Distribution accepts foreign layers only from URLs its config allows.
    allow = {"validation": {"manifests": {"urls": {"allow": ["^http://"]}}}}
    source = make_registry("basic", extra_config=allow)
    destination = make_registry("anon", extra_config=allow)
    image = make_image("foreign", layers=1, layer_size=1024)
    foreign = b"foreign layer bytes"
    with FaultProxy(destination.host) as elsewhere:
        document = orjson.loads(image.manifest)
        document["layers"].append(
            {
                "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                "size": len(foreign),
                "digest": digest_of(foreign),
                "urls": [f"{elsewhere.url}/v2/foreign/blobs/{digest_of(foreign)}"],
            }
        )
        raw = orjson.dumps(document)
        for blob in image.blobs().values():
            await push_blob(source, "foreign/app", blob)
        await push_manifest(source, "foreign/app", "v1", raw, image.media_type)
        creds = Credentials(source.username or "", source.password or "")
        outcome = await copy_all(
            [("foreign/app", image)],
            (source.host, RegistryOptions(tls_verify=False, credentials=creds)),
            (destination.host, RegistryOptions(tls_verify=False)),
        )
        assert outcome == {"foreign/app": None}
        assert elsewhere.records() == [], "the foreign layer's URL was fetched"
