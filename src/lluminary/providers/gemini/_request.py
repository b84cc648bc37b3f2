"""ChatRequest → Gemini ``generateContent`` request body.

Where Gemini differs: the system prompt is ``systemInstruction``; roles are
``user`` and ``model``; tool results travel in a ``user`` turn as
``functionResponse`` parts, which need the function's name (taken from the
result, else from the earlier call with that id) and an object ``response``
(non-object content is wrapped as ``{"result": …}``, a failed tool's as
``{"error": …}``, the two keys Gemini's docs suggest). Consecutive turns of one
role merge into one content, since the answers to parallel calls must share one
turn. Sampling settings live in ``generationConfig`` and tool choice in
``toolConfig.functionCallingConfig``.

Thought signatures: Gemini puts the signature on the first ``functionCall`` part
of a turn with calls (else on its last part) and requires it back there, so
an assistant turn's ``ReasoningPart.signature`` is sent on its first function
call, or on its last text part. Reasoning text itself is not sent back: Gemini
keeps the model's context through the signature, and the text is only a summary.

Schemas: ``parameters`` and ``responseSchema`` take an OpenAPI subset that
rejects JSON Schema keywords such as ``additionalProperties`` or ``$ref``. A
schema inside that subset goes there, as the docs show; any other goes to
``parametersJsonSchema`` / ``responseJsonSchema``, which take JSON Schema as is.
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import msgspec

from lluminary.events import (
    ChatRequest,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from lluminary.providers.gemini._decode import SYNTHETIC_ID_PREFIX

__all__ = ["encode_body", "encode_contents", "openapi_compatible"]

_decode_json = msgspec.json.Decoder().decode

# Keywords of Gemini's ``Schema`` object (the OpenAPI subset); sub-schemas sit under
# ``properties`` (a map), ``items`` and ``anyOf`` (a list).
_SCHEMA_KEYS: Final = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
    }
)  # fmt: skip
_BARE_OBJECT: Final = frozenset({"type", "properties", "required", "title", "description", "additionalProperties"})
_TOOL_MODES: Final = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def openapi_compatible(schema: Any) -> bool:
    """Whether ``schema`` fits Gemini's ``Schema`` subset, so it can go in ``parameters``."""
    if not isinstance(schema, dict):
        return False
    if not schema.keys() <= _SCHEMA_KEYS or not isinstance(schema.get("type", ""), str):
        return False
    properties = schema.get("properties", {})
    if schema.get("type") == "object" and not properties:
        return False  # Gemini rejects an OBJECT schema whose properties are empty
    if not isinstance(properties, dict) or not all(openapi_compatible(s) for s in properties.values()):
        return False
    if "items" in schema and not openapi_compatible(schema["items"]):
        return False
    any_of = schema.get("anyOf", [])
    return isinstance(any_of, list) and all(openapi_compatible(s) for s in any_of)


def _takes_no_arguments(schema: dict[str, Any]) -> bool:
    """An object schema without properties: Gemini wants ``parameters`` left unset for those."""
    return (
        schema.get("type", "object") == "object"
        and not schema.get("properties")
        and schema.keys() <= _BARE_OBJECT
        and schema.get("additionalProperties") in (None, False)
    )


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if url and url.startswith("data:") and "," in url:
        # data:[<mime>][;base64],<data> — Gemini takes inline images as inlineData only.
        header, data = url[5:].split(",", 1)
        if not header.endswith(";base64"):
            data = base64.b64encode(unquote_to_bytes(data)).decode()
        mime = header.split(";", 1)[0] or part.media_type or "image/png"
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url:
        file: dict[str, Any] = {"fileUri": url}
        guessed = part.media_type or mimetypes.guess_type(url.split("?", 1)[0])[0]
        if guessed:
            file["mimeType"] = guessed
        return {"fileData": file}
    return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data or ""}}


def _response_object(part: ToolResultPart) -> dict[str, Any]:
    try:
        value = _decode_json(part.content)
    except msgspec.DecodeError:
        value = part.content
    if part.is_error:
        return {"error": value}
    return value if isinstance(value, dict) else {"result": part.content}


def _model_parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signature: str | None = None
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ReasoningPart):
            signature = signature or part.signature
        elif isinstance(part, ToolCallPart):
            call: dict[str, Any] = {"name": part.name, "args": part.arguments}
            if part.id and not part.id.startswith(SYNTHETIC_ID_PREFIX):
                call["id"] = part.id
            parts.append({"functionCall": call})
        elif isinstance(part, ImagePart):
            parts.append(_image(part))
    if signature:
        calls = [p for p in parts if "functionCall" in p]
        texts = [p for p in parts if "text" in p]
        if calls:
            calls[0]["thoughtSignature"] = signature
        elif texts:
            texts[-1]["thoughtSignature"] = signature
        else:
            parts.append({"text": "", "thought": True, "thoughtSignature": signature})
    return parts


def _user_parts(message: Message, call_names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_image(part))
        elif isinstance(part, ToolResultPart):
            # Without a name Gemini rejects the turn; the id is the last resort.
            name = part.name or call_names.get(part.tool_call_id) or part.tool_call_id
            response: dict[str, Any] = {"name": name, "response": _response_object(part)}
            if part.tool_call_id and not part.tool_call_id.startswith(SYNTHETIC_ID_PREFIX):
                response["id"] = part.tool_call_id
            parts.append({"functionResponse": response})
    return parts


def encode_contents(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """The system texts and the ``contents`` list of user/model turns."""
    system = [request.system] if request.system else []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in request.messages:
        if message.role == "system":
            if message.text:
                system.append(message.text)
            continue
        if message.role == "assistant":
            role = "model"
            for part in message.parts:
                if isinstance(part, ToolCallPart):
                    call_names[part.id] = part.name
            parts = _model_parts(message)
        else:
            role = "user"
            parts = _user_parts(message, call_names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "text":
            config["responseMimeType"] = "text/plain"
        else:
            config["responseMimeType"] = "application/json"
            if fmt.type == "json_schema" and fmt.schema is not None:
                key = "responseSchema" if openapi_compatible(fmt.schema) else "responseJsonSchema"
                config[key] = fmt.schema
    return config


def _merge(body: dict[str, Any], extra: dict[str, Any]) -> None:
    """``extra`` into ``body``: objects merge key by key, ``tools`` lists extend, the rest replaces.

    So ``extra={"generationConfig": {"thinkingConfig": …}}`` keeps our temperature,
    and ``extra={"tools": [{"googleSearch": {}}]}`` keeps the function declarations.
    """
    for key, value in extra.items():
        current = body.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged = dict(current)
            _merge(merged, value)
            body[key] = merged
        elif key == "tools" and isinstance(current, list) and isinstance(value, list):
            body[key] = current + value
        else:
            body[key] = value


def encode_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body; the model goes in the URL, not here."""
    system, contents = encode_contents(request)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
            if not _takes_no_arguments(tool.parameters):
                key = "parameters" if openapi_compatible(tool.parameters) else "parametersJsonSchema"
                declaration[key] = tool.parameters
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}
    elif choice is not None:
        body["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    _merge(body, request.extra)
    return body
