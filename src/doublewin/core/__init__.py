"""The foundation: what every other part of doublewin builds on, importing none of it.

errors (the two kinds a user meets), parsing (ε as ``8/255``, devices), progress, logs, atomic
file writes, typed specs with their hashes, the results vocabulary, the distributed world, and
paths: the one module that names every file doublewin writes.
"""
