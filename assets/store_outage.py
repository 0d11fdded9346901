"""A step that met an object-store outage is run again, a little later, in the same run.

boto3's own retries (annobase.object_store: 8 attempts) ride out a server restart of a few seconds;
an outage longer than that (about half a minute) would fail the step, and the run with it. The
steps wrapped here redo their work whole and write each output whole (catalog partitions replaced,
an unsigned release version redone), so they are run again by Dagster (`RetryRequested`) on a
connection error or a server error from the store, and on nothing else: a bug fails at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

RETRIES = 3
FIRST_WAIT_SECONDS = 10  # then 20 and 40: a store down for over a minute is still ridden out


def is_store_outage(error: BaseException) -> bool:
    """The store could not be reached or failed on its side (5xx), anywhere in the exception's chain."""
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as StoreUnreachable

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (StoreUnreachable, HTTPClientError)):
            return True
        if isinstance(error, ClientError):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500:
                return True
        error = error.__cause__ or error.__context__
    return False


@contextmanager
def retried_on_store_outage(context: dg.AssetExecutionContext) -> Iterator[None]:
    """Turns a store outage inside the block into a retry of the step, waiting longer each time."""
    try:
        yield
    except Exception as error:
        if not is_store_outage(error):
            raise
        wait = FIRST_WAIT_SECONDS * 2**context.retry_number
        context.log.warning(f"object store unavailable ({error!r}); the step runs again in {wait} s")
        raise dg.RetryRequested(max_retries=RETRIES, seconds_to_wait=wait) from error
