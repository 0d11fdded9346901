"""Delivery: labelled data returned to the client that owns it."""
