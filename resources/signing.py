"""The key that signs releases: a path from the environment, never the key itself."""

import dagster as dg


class SigningKeyResource(dg.ConfigurableResource):
    """Ed25519 private key (PEM) at `key_path`; without one, a development key (and a warning), but
    only for the embedded store."""

    key_path: str | None = None

    def load(self, allow_dev: bool = True):
        """The `assets.release.signing.SigningKey` (imported here: resources load before assets);
        `allow_dev=False` raises `SigningKeyMissing` when no key is configured."""
        from assets.release.signing import load_signing_key

        return load_signing_key(self.key_path or None, allow_dev=allow_dev)
