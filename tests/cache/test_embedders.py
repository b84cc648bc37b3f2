"""Embedders: the local MiniLM model, and each API embedder against a loopback server.

No recordings of embedding calls exist, so the loopback replies are written in
each API's documented shape (OpenAI and Mistral ``data[].embedding``, Gemini
``embeddings[].values``, Cohere v2 ``embeddings.float``, Titan ``embedding``,
Ollama ``embeddings``), and each test checks the request we send against the
same documentation: path, auth header, body.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

import lluminary.embedders
from lluminary.embedders import (
    BedrockEmbedder,
    CohereEmbedder,
    Embedder,
    EmbedderError,
    GeminiEmbedder,
    HttpEmbedder,
    LocalEmbedder,
    MistralEmbedder,
    OllamaEmbedder,
    OpenAIEmbedder,
    create_embedder,
)
from lluminary.errors import ConfigError, MissingKeyError, UnknownProviderError
from lluminary.providers.bedrock import AwsCredentials
from tests.stores._backends import free_port
from tests.support import ReplayServer, Reply

KEY = "sk-embed-secret-key-123"
JSON = {"content-type": "application/json"}


def vectors(count: int, dim: int) -> list[list[float]]:
    return [[(i + 1) / 10 + j / 1000 for j in range(dim)] for i in range(count)]


def reply(body: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(msgspec.json.encode(body), status=status, headers={**JSON, **headers})


def test_the_public_surface_is_pinned() -> None:
    assert sorted(lluminary.embedders.__all__) == sorted(
        [
            "EMBEDDERS",
            "BedrockEmbedder",
            "CohereEmbedder",
            "Embedder",
            "EmbedderError",
            "GeminiEmbedder",
            "HttpEmbedder",
            "LocalEmbedder",
            "MistralEmbedder",
            "OllamaEmbedder",
            "OpenAIEmbedder",
            "create_embedder",
        ]
    )


# -- the local model ----------------------------------------------------------------------


async def test_local_vectors_are_unit_length_ordered_and_batch_independent(embedder: LocalEmbedder) -> None:
    texts = ["A much longer sentence about the capital of France and its museums.", "Hi", "Paris"]
    batch = await embedder.embed(texts)
    singles = [(await embedder.embed([t]))[0] for t in texts]
    assert isinstance(embedder, Embedder)
    assert embedder.dimension == 384
    assert [len(v) for v in batch] == [384, 384, 384]
    for vector, single in zip(batch, singles, strict=True):
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-4)
        assert sum(x * y for x, y in zip(vector, single, strict=True)) > 0.999  # padding does not leak in
    assert await embedder.embed([]) == []
    assert await embedder.embed(texts) == batch  # deterministic
    with pytest.raises(TypeError):
        await embedder.embed("one string")  # type: ignore[arg-type]


async def test_local_similarity_ranks_paraphrases_first(embedder: LocalEmbedder) -> None:
    query, paraphrase, unrelated = await embedder.embed(
        ["How do I reset my password?", "I forgot my password, how can I reset it?", "Best pizza in Naples"]
    )
    close = sum(x * y for x, y in zip(query, paraphrase, strict=True))
    far = sum(x * y for x, y in zip(query, unrelated, strict=True))
    assert close > 0.8 > 0.3 > far


async def test_local_embedding_never_blocks_the_event_loop(embedder: LocalEmbedder) -> None:
    texts = [f"sentence number {i} about caching streams of events" for i in range(96)]
    ticks = 0
    done = anyio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await embedder.embed(texts)
        done.set()
    # A blocking call would have frozen the loop for the whole batch (about half a second).
    assert ticks > 100


async def test_a_missing_model_file_is_an_embedder_error(tmp_path: Any) -> None:
    broken = LocalEmbedder(model_path=tmp_path / "missing.onnx")
    with pytest.raises(EmbedderError) as caught:
        await broken.embed(["x"])
    assert caught.value.code == "not_found"


# -- the APIs -----------------------------------------------------------------------------


async def test_openai_request_and_response() -> None:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors(3, 1536))]
    body = {"object": "list", "data": data[::-1], "model": "text-embedding-3-small", "usage": {"prompt_tokens": 5}}
    async with (
        ReplayServer([reply(body)]) as server,
        OpenAIEmbedder("text-embedding-3-small", api_key=KEY, base_url=server.url + "/v1") as embedder,
    ):
        result = await embedder.embed(["a", "b", "c"])
    assert result == vectors(3, 1536)  # put back in index order
    seen = server.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v1/embeddings")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.json() == {"model": "text-embedding-3-small", "input": ["a", "b", "c"], "encoding_format": "float"}


async def test_shorter_vectors_are_requested_in_each_api_dialect() -> None:
    async with (
        ReplayServer([reply({"data": [{"index": 0, "embedding": [0.1] * 256}]})]) as server,
        OpenAIEmbedder("text-embedding-3-large", api_key=KEY, base_url=server.url, dimension=256) as e,
    ):
        await e.embed(["a"])
        async with MistralEmbedder("codestral-embed", api_key=KEY, base_url=server.url, dimension=256) as m:
            await m.embed(["a"])
    assert server.requests[0].json()["dimensions"] == 256
    assert server.requests[1].json()["output_dimension"] == 256
    native = MistralEmbedder("mistral-embed", api_key=KEY, dimension=1024)
    assert native.dimension == 1024
    assert native.requested_dimension is None
    await native.aclose()


async def test_mistral_request_and_batching() -> None:
    replies = [
        reply({"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors(n, 1024))]}) for n in (2, 2, 1)
    ]
    async with (
        ReplayServer(replies) as server,
        MistralEmbedder("mistral-embed", api_key=KEY, base_url=server.url + "/v1", batch_size=2) as e,
    ):
        result = await e.embed(["a", "b", "c", "d", "e"])
    assert len(result) == 5
    assert len(server.requests) == 3
    assert [r.json()["input"] for r in server.requests] == [["a", "b"], ["c", "d"], ["e"]]
    assert server.requests[0].path == "/v1/embeddings"
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_gemini_request_and_response() -> None:
    body = {"embeddings": [{"values": v} for v in vectors(2, 768)]}
    async with (
        ReplayServer([reply(body)]) as server,
        GeminiEmbedder("models/text-embedding-004", api_key=KEY, base_url=server.url) as embedder,
    ):
        result = await embedder.embed(["a", "b"])
    assert result == vectors(2, 768)
    seen = server.requests[0]
    assert seen.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert seen.query == ""
    assert KEY not in seen.path
    assert seen.headers["x-goog-api-key"] == KEY
    first = seen.json()["requests"][0]
    assert first == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "a"}]},
        "taskType": "SEMANTIC_SIMILARITY",
    }


async def test_cohere_request_and_response() -> None:
    body = {
        "id": "e-1",
        "embeddings": {"float": vectors(2, 1024)},
        "texts": ["a", "b"],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
        "response_type": "embeddings_by_type",
    }
    async with (
        ReplayServer([reply(body)]) as server,
        CohereEmbedder("embed-english-v3.0", api_key=KEY, base_url=server.url) as embedder,
    ):
        result = await embedder.embed(["a", "b"])
    assert result == vectors(2, 1024)
    seen = server.requests[0]
    assert seen.path == "/v2/embed"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.json() == {
        "model": "embed-english-v3.0",
        "texts": ["a", "b"],
        "input_type": "search_query",
        "embedding_types": ["float"],
    }


async def test_ollama_request_and_response() -> None:
    body = {"model": "all-minilm", "embeddings": vectors(2, 384), "total_duration": 1, "prompt_eval_count": 2}
    async with ReplayServer([reply(body)]) as server:
        host = server.url.removeprefix("http://")
        async with OllamaEmbedder("all-minilm:latest", env={"OLLAMA_HOST": host}) as embedder:
            result = await embedder.embed(["a", "b"])
    assert result == vectors(2, 384)
    seen = server.requests[0]
    assert seen.path == "/api/embed"
    assert "Authorization" not in seen.headers
    assert seen.json() == {"model": "all-minilm:latest", "input": ["a", "b"], "truncate": True}


async def test_bedrock_titan_signs_one_request_per_text() -> None:
    credentials = AwsCredentials("AKIDEXAMPLE1234567890", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    replies = [reply({"embedding": v, "inputTextTokenCount": 1}) for v in vectors(2, 1024)]
    async with (
        ReplayServer(replies) as server,
        BedrockEmbedder(credentials=credentials, region="us-east-1", base_url=server.url, env={}) as e,
    ):
        result = await e.embed(["a", "b"])
        async with BedrockEmbedder(api_key="bedrock-api-key", region="eu-west-1", base_url=server.url, env={}) as b:
            await b.embed(["c"])
    assert result == vectors(2, 1024)
    first, _, bearer = server.requests
    assert first.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert first.json() == {"inputText": "a", "normalize": True}
    auth = first.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE1234567890/")
    assert "/us-east-1/bedrock/aws4_request" in auth
    assert "X-Amz-Date" in first.headers
    assert bearer.headers["Authorization"] == "Bearer bedrock-api-key"
    with pytest.raises(MissingKeyError):
        BedrockEmbedder(region="us-east-1", env={})


@pytest.mark.parametrize(
    ("embedder", "status", "body", "code"),
    [
        (
            OpenAIEmbedder,
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {KEY}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            "auth",
        ),
        (
            OpenAIEmbedder,
            429,
            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
            "rate_limited",
        ),
        (
            GeminiEmbedder,
            400,
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
                }
            },
            "auth",
        ),
        (CohereEmbedder, 400, {"id": "x", "message": "invalid request: too many tokens"}, "context_length"),
        (
            MistralEmbedder,
            422,
            {
                "object": "error",
                "message": {"detail": [{"loc": ["body", "input"], "msg": "Field required"}]},
                "type": "invalid_request_error",
            },
            "invalid_request",
        ),
        (OllamaEmbedder, 404, {"error": 'model "nomic" not found, try pulling it first'}, "not_found"),
    ],
)
async def test_api_errors_are_typed_and_carry_no_key(
    embedder: type[HttpEmbedder], status: int, body: Any, code: str
) -> None:
    model = next(iter(embedder.known_dimensions))
    async with (
        ReplayServer([reply(body, status=status, **{"retry-after": "7"})]) as server,
        embedder(model, api_key=KEY, base_url=server.url) as e,
    ):
        with pytest.raises(EmbedderError) as caught:
            await e.embed(["a"])
    error = caught.value
    assert error.code == code
    assert error.event.status == status
    assert error.event.retry_after == 7
    assert error.retryable == (code == "rate_limited")
    assert KEY not in str(error)
    assert KEY not in repr(error.event)
    assert KEY not in repr(e)


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data": [{"index": 0, "embedding": [0.1, 0.2]}]}', b'{"data": []}', b'{"error": "x"}'],
)
async def test_malformed_answers_are_protocol_errors(body: bytes) -> None:
    async with (
        ReplayServer([Reply(body, headers=JSON)]) as server,
        OpenAIEmbedder("text-embedding-3-small", api_key=KEY, base_url=server.url) as embedder,
    ):
        with pytest.raises(EmbedderError) as caught:
            await embedder.embed(["a"])
    assert caught.value.code == "protocol"


async def test_an_unreachable_api_is_a_connection_error() -> None:
    async with OllamaEmbedder("all-minilm", base_url=f"http://127.0.0.1:{free_port()}") as embedder:
        with pytest.raises(EmbedderError) as caught:
            await embedder.embed(["a"])
    assert caught.value.code == "connection"
    assert caught.value.retryable


async def test_create_embedder_by_name() -> None:
    assert isinstance(create_embedder("local"), LocalEmbedder)
    openai = create_embedder("openai:text-embedding-3-small", env={"OPENAI_API_KEY": KEY})
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.dimension == 1536
    assert KEY not in repr(openai)
    await openai.aclose()
    with pytest.raises(UnknownProviderError):
        create_embedder("anthropic:voyage-3")
    with pytest.raises(MissingKeyError):
        create_embedder("cohere:embed-v4.0", env={})
    with pytest.raises(ConfigError):
        create_embedder("openai:my-fine-tuned-embedder", env={"OPENAI_API_KEY": KEY})  # size unknown
    custom = create_embedder("openai:my-fine-tuned-embedder", env={"OPENAI_API_KEY": KEY}, dimension=64)
    assert custom.dimension == 64
    await custom.aclose()  # type: ignore[attr-defined]
