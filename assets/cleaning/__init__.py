"""Cleaning: what happens to accepted items before any annotator sees them."""
