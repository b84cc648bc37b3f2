"""The operators that ship with LLuMinary."""

from lluminary.engine.operators._retry import Retry
from lluminary.engine.operators._timeout import Timeout

__all__ = ["Retry", "Timeout"]
