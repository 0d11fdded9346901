"""annobase: the data platform of an AI data-annotation base (CLI, settings, object keys)."""
