"""The harness: suite files, the plan of work units, the unit runner (it measures; side outputs
go through the store), executors (in process, local workers, Ray), acceleration and timing,
the sweep driver. Imports ``core``, ``metrics`` and ``store``; never the report.
"""
