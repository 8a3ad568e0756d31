"""The report: statistics, tables, plots, orderings, the regression gate's comparison and the
leaderboard pages. Reads records only through the store; never imports the harness.
"""
