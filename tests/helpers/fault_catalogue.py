"""The fault scenarios of issue 6, one per row of the figures table (run by
:mod:`tests.helpers.fault_scenarios`).

Source-side faults hit blob GETs (where a copy reads); destination-side faults hit uploads, mounts and
manifest PUTs. ``must_complete`` marks faults that retries, token refreshes and fallbacks must absorb
completely; the others (a flipped byte, a burst longer than the retry budget) may fail images, which
must then be reported with a clear reason and leave nothing corrupt behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.helpers.fault_proxy import Fault, FaultProxy, RecordedRequest
from tests.helpers.fault_scenarios import BLOB_GET, UPLOAD, Scenario, ScenarioRun, Side
from tests.helpers.registry import RegistryServer

CHUNK = 16 * 1024
INDEX_PUT = r"/v2/.+/multi/manifests/v1"
FINAL_PUT = {"method": "PUT", "path": UPLOAD, "query": r"digest="}


def _any_request(nth: int, times: int = 1) -> dict[str, object]:
    # Not the ping: a client that cannot ping fails before any copy, which tells nothing.
    return {"path": r"/v2/.+", "nth": nth, "times": times}


def _authorization_for(server: RegistryServer) -> Callable[[RecordedRequest], str | None]:
    """What a storage backend / CDN alias uses upstream: never the client's header."""

    def header(record: RecordedRequest) -> str | None:
        if server.token_service is not None:
            match = re.match(r"/v2/(.+?)/(?:blobs|manifests)/", record.path)
            repo = match.group(1) if match else ""
            return "Bearer " + server.token_service.issue_token(
                server.username, [f"repository:{repo}:pull,push"]
            )
        return server.basic_auth_header()

    return header


def _cdn(proxies: dict[Side, FaultProxy], servers: dict[Side, RegistryServer]) -> None:
    source = proxies["source"]
    alias = source.add_alias("127.0.0.2", upstream_authorization=_authorization_for(servers["source"]))
    source.add_rule(
        Fault.redirect(alias, "sig=canary-sig&X-Amz-Signature=canary-amz"),
        method="GET",
        path=BLOB_GET,
        listener=source.address,
        times=0,
    )


def _foreign_location(proxies: dict[Side, FaultProxy], servers: dict[Side, RegistryServer]) -> None:
    destination = proxies["destination"]
    alias = destination.add_alias(
        "127.0.0.2",
        upstream_authorization=_authorization_for(servers["destination"]),
    )
    destination.add_rule(Fault.rewrite_location(alias), method="POST", path=UPLOAD, times=0)


def _no_authorization_on_alias(side: Side) -> Callable[[ScenarioRun], str | None]:
    def check(run: ScenarioRun) -> str | None:
        records = run.source_records if side == "source" else run.destination_records
        on_alias = [r for r in records if r.listener.startswith("127.0.0.2:")]
        if not on_alias:
            return "the other host was never used"
        leaked = [r for r in on_alias if r.authorization is not None]
        return f"Authorization sent to another host {len(leaked)} times" if leaked else None

    return check


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "connection reset during blob GET",
        (("source", Fault.reset_response(), {"method": "GET", "path": BLOB_GET, "nth": 2, "times": 3}),),
    ),
    Scenario(
        "truncated blob GET body",
        (("source", Fault.truncate(), {"method": "GET", "path": BLOB_GET, "nth": 1, "times": 3}),),
    ),
    Scenario(
        "stall after response headers",
        (("source", Fault.stall(5), {"method": "GET", "path": BLOB_GET, "nth": 2, "times": 2}),),
        read_timeout=0.5,
    ),
    Scenario(
        "one flipped byte in a blob",
        (("source", Fault.flip_byte(), {"method": "GET", "path": BLOB_GET, "nth": 3}),),
        must_complete=False,
    ),
    Scenario(
        "connection reset during chunked PATCH",
        (("destination", Fault.reset_request(), {"method": "PATCH", "path": UPLOAD, "nth": 2, "times": 3}),),
        chunk_size=CHUNK,
    ),
    Scenario(
        "connection reset during monolithic PUT",
        (("destination", Fault.reset_request(), {**FINAL_PUT, "nth": 1, "times": 3}),),
    ),
    *(
        Scenario(f"HTTP {status} once", (("destination", Fault.error(status), _any_request(nth=3 + i)),))
        for i, status in enumerate((500, 502, 503, 504))
    ),
    Scenario(
        "HTTP 503 burst of 10",
        (("destination", Fault.error(503), _any_request(nth=4, times=10)),),
        must_complete=False,
    ),
    *(
        Scenario(
            f"429, Retry-After {form}",
            (("destination", Fault.too_many_requests(form, 1), _any_request(nth=5)),),
        )
        for form in ("seconds", "date", "absent")
    ),
    Scenario(
        "401 invalid_token mid chunked upload",
        (("destination", Fault.invalid_token(), {"method": "PATCH", "path": UPLOAD, "nth": 2}),),
        destination="token",
        chunk_size=CHUNK,
    ),
    Scenario(
        "401 invalid_token on the final PUT",
        (("destination", Fault.invalid_token(), {**FINAL_PUT, "nth": 2}),),
        destination="token",
    ),
    Scenario(
        "202 (refused) cross-repo mount",
        (
            (
                "destination",
                Fault.refuse_mount(),
                {"method": "POST", "path": UPLOAD, "query": "mount=", "times": 0},
            ),
        ),
    ),
    Scenario(
        "413 on bodies over 32 KiB",
        (("destination", Fault.too_large(32 * 1024), {"method": "PUT", "path": UPLOAD, "times": 0}),),
    ),
    Scenario(
        "MANIFEST_BLOB_UNKNOWN once on the index PUT",
        (
            (
                "destination",
                Fault.manifest_blob_unknown(),
                {"method": "PUT", "path": r"/v2/.+/multi/manifests/v1"},
            ),
        ),
    ),
    Scenario(
        "307 of blob GETs to a CDN host",
        setup=_cdn,
        check=_no_authorization_on_alias("source"),
    ),
    Scenario(
        "upload Location on another host",
        destination="token",
        setup=_foreign_location,
        check=_no_authorization_on_alias("destination"),
    ),
)
