"""The run store: one content-addressed entry per stage and spec, written atomically (store),
its lease-backed locks (locks), garbage collection (gc) and the disk a plan will use (disk)."""
