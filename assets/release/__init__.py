"""Release: published industry datasets, signed, immutable, traceable."""
