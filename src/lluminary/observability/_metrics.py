"""The metric instruments: names, units and bucket boundaries in one place.

The GenAI client metrics follow the semantic conventions exactly (names, units,
the spec's advisory bucket boundaries). The rest are ours, under
``lluminary.client.*``. Through the Prometheus exporter the names become
(dots to underscores, the unit appended, ``_total`` on counters):

=============================================  ==============================================================
instrument                                     Prometheus series
=============================================  ==============================================================
gen_ai.client.token.usage                      gen_ai_client_token_usage_{bucket,sum,count}
gen_ai.client.operation.duration               gen_ai_client_operation_duration_seconds_{bucket,sum,count}
gen_ai.client.operation.time_to_first_chunk    gen_ai_client_operation_time_to_first_chunk_seconds_…
gen_ai.client.operation.time_per_output_chunk  gen_ai_client_operation_time_per_output_chunk_seconds_… [1]
lluminary.client.time_per_output_token         lluminary_client_time_per_output_token_seconds_…
lluminary.client.cost.usd                      lluminary_client_cost_usd_total
lluminary.client.cache.hits / .misses          lluminary_client_cache_hits_total / …_misses_total
lluminary.client.retries                       lluminary_client_retries_total
lluminary.client.fallbacks                     lluminary_client_fallbacks_total
lluminary.client.active_streams                lluminary_client_active_streams (a gauge)
=============================================  ==============================================================

[1] only with ``Metrics(chunk_timing=True)``: the spec records it once per
chunk, and one histogram record costs several microseconds in the Python SDK,
which is more than decoding the chunk. Time per output *token*, recorded once
per stream, is the cheap default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter, UpDownCounter

__all__ = ["DURATION_BUCKETS", "TOKEN_BUCKETS", "TPOT_BUCKETS", "Instruments"]

TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # noqa: S105 - a metric name, not a secret
OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
TIME_PER_OUTPUT_TOKEN: Final = "lluminary.client.time_per_output_token"  # noqa: S105 - a metric name
COST: Final = "lluminary.client.cost.usd"
CACHE_HITS: Final = "lluminary.client.cache.hits"
CACHE_MISSES: Final = "lluminary.client.cache.misses"
RETRIES: Final = "lluminary.client.retries"
FALLBACKS: Final = "lluminary.client.fallbacks"
ACTIVE_STREAMS: Final = "lluminary.client.active_streams"

#: The spec's advisory boundaries for token counts and for every duration.
TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: Per-token latency lives in milliseconds, below the spec's smallest duration bucket.
TPOT_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
)


class Instruments:
    """Every instrument the Metrics operator records into, created once per meter."""

    __slots__ = (
        "active_streams",
        "cache_hits",
        "cache_misses",
        "cost",
        "duration",
        "fallbacks",
        "retries",
        "time_per_output_chunk",
        "time_per_output_token",
        "time_to_first_chunk",
        "token_usage",
    )

    def __init__(self, meter: Meter) -> None:
        self.token_usage: Histogram = meter.create_histogram(
            TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration: Histogram = meter.create_histogram(
            OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_to_first_chunk: Histogram = meter.create_histogram(
            TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from issuing the request to the first content event of the stream.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_per_output_chunk: Histogram = meter.create_histogram(
            TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive content events, for each one after the first.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_per_output_token: Histogram = meter.create_histogram(
            TIME_PER_OUTPUT_TOKEN,
            unit="s",
            description="Generation time after the first content event divided by the output tokens after the first.",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS,
        )
        self.cost: Counter = meter.create_counter(
            COST, unit="{USD}", description="Spend in US dollars, from the stream's cost events."
        )
        self.cache_hits: Counter = meter.create_counter(
            CACHE_HITS, unit="{request}", description="Requests answered from the response cache."
        )
        self.cache_misses: Counter = meter.create_counter(
            CACHE_MISSES,
            unit="{request}",
            description="Requests the response cache could not answer (counted only when asked to).",
        )
        self.retries: Counter = meter.create_counter(
            RETRIES, unit="{retry}", description="Retries, labelled with the error that caused them."
        )
        self.fallbacks: Counter = meter.create_counter(
            FALLBACKS, unit="{fallback}", description="Moves to a fallback model."
        )
        self.active_streams: UpDownCounter = meter.create_up_down_counter(
            ACTIVE_STREAMS, unit="{stream}", description="Streams in flight."
        )
