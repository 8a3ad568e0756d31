"""The store: the record schema, the results folder (work units as files, run files, the legacy
single file) and its reader, and the side artifacts (example images, heat maps, kept outputs).
Imports ``core`` and nothing above it; the harness writes through it and the report reads it.
"""
