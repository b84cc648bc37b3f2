"""Sans-IO framers: bytes in, whole messages out, whatever the chunking.

Each framer keeps only the bytes of the message it is in the middle of, and
raises :class:`FramingError` for input it cannot frame, so a decoder can end the
stream with one ``protocol`` error.
"""

from lluminary.providers._framing._common import FramingError
from lluminary.providers._framing._eventstream import EventStreamFramer, EventStreamMessage
from lluminary.providers._framing._ndjson import NDJSONFramer
from lluminary.providers._framing._sse import SSEFramer, SSEMessage

__all__ = ["EventStreamFramer", "EventStreamMessage", "FramingError", "NDJSONFramer", "SSEFramer", "SSEMessage"]
