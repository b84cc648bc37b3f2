"""The local in-process provider: GGUF models run by llama.cpp (``local:``, ``local:/path.gguf``)."""

from lluminary.providers.local._messages import completion_kwargs, to_messages
from lluminary.providers.local._provider import LocalProvider

__all__ = ["LocalProvider", "completion_kwargs", "to_messages"]
