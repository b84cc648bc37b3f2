# LLuMinary's one command surface: the README and CI use these recipes as they are.

set shell := ["bash", "-euo", "pipefail", "-c"]

export UV_PYTHON_DOWNLOADS := "never"

# Create .venv with every extra and the dev tools, exactly as locked.
setup:
    uv sync --all-extras --frozen

# Run the whole test suite (pass pytest arguments after the recipe name).
test *ARGS:
    uv run --frozen pytest {{ARGS}}

# Lint, format check and strict types.
check:
    uv run --frozen ruff check src tests benchmarks examples fuzz
    uv run --frozen ruff format --check src tests benchmarks examples fuzz
    uv run --frozen mypy

# Fuzz one parser with atheris; TARGET is one of fuzz/fuzz_*.py (sse, ndjson, eventstream, openai, …).
fuzz TARGET *ARGS:
    mkdir -p fuzz/corpus/{{TARGET}} fuzz/artifacts
    uv run --frozen --with atheris python fuzz/fuzz_{{TARGET}}.py --seeds fuzz/corpus/{{TARGET}}
    uv run --frozen --with atheris python fuzz/fuzz_{{TARGET}}.py fuzz/corpus/{{TARGET}} -artifact_prefix=fuzz/artifacts/ {{ARGS}}

# The hypothesis fuzz properties at CI scale (10,000 examples per parser), in two shards side by side.
fuzz-ci:
    LLUMINARY_FUZZ_SHARD=1/2 uv run --frozen pytest tests/faults/test_fuzz.py -k properties -q -p no:cacheprovider & \
    LLUMINARY_FUZZ_SHARD=2/2 uv run --frozen pytest tests/faults/test_fuzz.py -k properties -q -p no:cacheprovider & \
    fail=0; for job in $(jobs -p); do wait "$job" || fail=1; done; exit "$fail"

# The full soak: 20,000 streams, 1,000 at a time, under 5% memory growth.
soak:
    uv run --frozen pytest -m soak tests/faults/test_soak.py

# The streaming benchmark: LLuMinary against the raw aiohttp floor, in one run.
bench *ARGS:
    uv run --frozen --group bench python benchmarks/bench_stream.py {{ARGS}}

# A Prometheus endpoint on PORT, kept filled by a probe of the local model.
serve PORT="9464":
    uv run --frozen lluminary metrics --port {{PORT}} --probe local:

# Every client side by side (LLuMinary, the floor, httpx, the SDKs, LiteLLM, pydantic-ai), scenarios S1-S4.
bench-all *ARGS:
    uv run --frozen --group bench python benchmarks/bench_all.py {{ARGS}}

# Ask the local in-process model (no key, no network).
chat PROMPT="What is the capital of France?":
    uv run --frozen lluminary chat "{{PROMPT}}"

# Tests with a coverage report.
coverage:
    uv run --frozen pytest --cov --cov-report=term-missing:skip-covered
