"""Reliability proofs: a fault-injecting loopback proxy and the suites that show nothing is lost.

Cuts, resets, stalls, slow drips, ``Retry-After``, cancellation, a memory soak,
fuzzed parsers and a canary key, all over real loopback sockets or straight from
recorded bytes. Nothing here talks to a real provider.
"""
