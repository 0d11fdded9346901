"""Intake: client deliveries verified against their manifests, bad input quarantined with a reason."""
