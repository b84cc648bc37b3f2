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
    uv run --frozen ruff check src tests benchmarks examples
    uv run --frozen ruff format --check src tests benchmarks examples
    uv run --frozen mypy

# The streaming benchmark: LLuMinary against the raw aiohttp floor, in one run.
bench *ARGS:
    uv run --frozen python benchmarks/bench_stream.py {{ARGS}}

# A Prometheus endpoint on PORT, kept filled by a probe of the local model.
serve PORT="9464":
    uv run --frozen lluminary metrics --port {{PORT}} --probe local:

# Ask the local in-process model (no key, no network).
chat PROMPT="What is the capital of France?":
    uv run --frozen lluminary chat "{{PROMPT}}"

# Tests with a coverage report.
coverage:
    uv run --frozen pytest --cov --cov-report=term-missing:skip-covered
