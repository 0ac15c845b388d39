"""CSV downloads, written out as their rows come: an export of any size in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, stream_with_context

CSV_CHUNK = 64 * 1024  # bytes of CSV sent at a time


def csv_download(rows: Iterable[list[Any]], filename: str) -> Response:
    """Rows as a CSV download, streamed in chunks as the rows are read."""

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow(row)
            if buffer.tell() >= CSV_CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(chunks()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
