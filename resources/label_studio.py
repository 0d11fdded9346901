"""The Label Studio resource: the server annobase drives, when one is configured."""

from __future__ import annotations

import dagster as dg

from annobase.label_studio import LabelStudioProjects, MediaStorage


class LabelStudioResource(dg.ConfigurableResource):
    """A Label Studio server (`ANNOBASE_LABEL_STUDIO_URL`, `ANNOBASE_LABEL_STUDIO_API_KEY`: a legacy
    token or a personal access token, both accepted by the SDK). Unset URL: batches and exports stay
    files in the store, for any tool (CONTRACT.md section 3).

    Label Studio reaches the media with the S3 endpoint and credentials of its own environment
    (`S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`, ...), never with keys annobase would hand over, and signs the
    URLs it gives annotators with them. `media_endpoint_url` names an endpoint per project instead:
    Label Studio's SSRF guard refuses one on a private or loopback address there, which its own
    `S3_ENDPOINT` may name."""

    url: str | None = None
    api_key: str | None = None
    media_endpoint_url: str | None = None
    media_region: str | None = None
    presign_ttl_minutes: int = 60

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def open(self) -> LabelStudioProjects | None:
        if not self.configured:
            return None
        if not self.api_key:
            raise dg.DagsterInvariantViolationError(
                "ANNOBASE_LABEL_STUDIO_URL is set but ANNOBASE_LABEL_STUDIO_API_KEY is not"
            )
        from label_studio_sdk.client import LabelStudio

        return LabelStudioProjects(
            LabelStudio(base_url=self.url, api_key=self.api_key, timeout=120), self.url
        )

    def media(self, bucket: str) -> MediaStorage:
        return MediaStorage(bucket, self.media_endpoint_url, self.media_region, self.presign_ttl_minutes)
