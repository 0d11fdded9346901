"""Annotation: batches out to the annotation tool (Label Studio's import format) and finished batches
back (its export format)."""
