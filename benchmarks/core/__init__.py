"""The contracts every layer agrees on: errors, seeding, image and mask batches, the Method
contract and its hooks, tasks (observe, composite, scored region), mask families and each batch's
drawing (conditions), identity hashing, atomic io and locks, the registry and its catalogue.
Imports nothing of the suite outside ``core``.
"""
