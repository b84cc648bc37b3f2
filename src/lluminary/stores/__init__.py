"""Stores: caches, vector indexes and event logs behind small protocols."""

from lluminary.stores._protocols import CacheStore, EventLog, LoggedEvent, StoreError, VectorHit, VectorIndex

__all__ = ["CacheStore", "EventLog", "LoggedEvent", "StoreError", "VectorHit", "VectorIndex"]
