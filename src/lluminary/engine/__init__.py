"""The engine, the operator type and the stream it returns."""

from lluminary.engine._engine import DEFAULT_MODEL, Engine
from lluminary.engine._operator import EventMap, Handler, Operator, compose
from lluminary.engine._stream import EventStream
from lluminary.engine.operators import Retry, Timeout

__all__ = ["DEFAULT_MODEL", "Engine", "EventMap", "EventStream", "Handler", "Operator", "Retry", "Timeout", "compose"]
