"""Reliability operators: fallback, rate limits, concurrency, retry budgets."""
