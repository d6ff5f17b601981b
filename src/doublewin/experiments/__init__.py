"""Typed stage specs, their content hashes, the run store, and the experiment runner."""
