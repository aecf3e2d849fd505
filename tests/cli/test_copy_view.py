"""Progress output: skopeo's plain lines and the rich display's final lines."""

from __future__ import annotations

import io

from rich.console import Console

from asyncsync.cli.copy_view import PlainProgress, RichProgress, blob_line
from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor

BLOB = Descriptor("application/octet-stream", Digest.parse("sha256:" + "3e207b409db3" + "0" * 52), 10)


def test_blob_lines_match_skopeo() -> None:
    assert blob_line("blob", BLOB.digest, "done") == "Copying blob 3e207b409db3 done"
    assert blob_line("blob", BLOB.digest, "skipped") == "Copying blob 3e207b409db3 skipped: already exists"
    assert (
        blob_line("blob", BLOB.digest, "mounted", "proj/app")
        == "Copying blob 3e207b409db3 mounted from proj/app"
    )
    assert blob_line("config", BLOB.digest, "done") == "Copying config 3e207b409db3 done"


def test_plain_progress_prints_one_line_per_step() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)
    progress.copy_started("docker://a/b:c", "docker://d/e:f")
    progress.blob_started(BLOB, "blob")
    progress.blob_advanced(BLOB, 10)
    progress.blob_finished(BLOB, "blob", "done")
    progress.blob_finished(BLOB, "config", "skipped")
    progress.manifest_writing()
    assert out.getvalue().splitlines() == [
        "Getting image source signatures",
        "Copying blob 3e207b409db3 done",
        "Copying config 3e207b409db3 skipped: already exists",
        "Writing manifest to image destination",
    ]


def test_rich_progress_leaves_the_final_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    with RichProgress(console) as progress:
        progress.blob_started(BLOB, "blob")
        progress.blob_advanced(BLOB, 5)
        progress.blob_restarted(BLOB, 0)
        progress.blob_advanced(BLOB, 10)
        progress.blob_finished(BLOB, "blob", "mounted", "proj/app")
        progress.manifest_writing()
    text = out.getvalue()
    assert "Copying blob 3e207b409db3 mounted from proj/app" in text
    assert "Writing manifest to image destination" in text
