"""Workflow plumbing: config, planning, code hashes, provenance, manifest, inputs, sizes."""
