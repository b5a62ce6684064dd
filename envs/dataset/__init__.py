"""The demonstration dataset: one HDF5 file per episode plus a JSON index."""
