"""AWS credentials, and SigV4 signing through botocore.

botocore is the ``bedrock`` extra and is imported only here, inside the
functions that need it, so ``import lluminary`` never pays for it.

Credentials are held as :class:`AwsCredentials`, whose ``repr`` shows none of
their parts. They come either fixed (explicit, or from the environment) or from
botocore's credential chain (profiles, SSO, container and instance roles …),
whose credentials may refresh themselves; :class:`ChainCredentials` hands out a
frozen snapshot per request.

Signing covers the method, the URL path exactly as the transport will send it,
the body's SHA-256, and every header we set (``Host`` is added from the URL, as
the HTTP client will send it). The URL must therefore already be in the form
both transports send unchanged; see ``model_path`` in the provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from lluminary.errors import MissingKeyError
from lluminary.providers._base import Secret

__all__ = ["AwsCredentials", "ChainCredentials", "CredentialSource", "load_chain", "sign_headers"]

SERVICE: Final = "bedrock"
#: Headers SigV4 adds, under the names we send them with.
_SIGNED_HEADERS: Final = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")


class AwsCredentials:
    """An access key pair and optional session token. Printing it shows no secret."""

    __slots__ = ("access_key_id", "secret_access_key", "session_token")

    def __init__(
        self, access_key_id: str, secret_access_key: str | Secret, session_token: str | Secret | None = None
    ) -> None:
        if not access_key_id or not secret_access_key:
            raise MissingKeyError("AWS credentials need both an access key id and a secret access key")
        self.access_key_id = access_key_id
        self.secret_access_key = (
            secret_access_key if isinstance(secret_access_key, Secret) else Secret(secret_access_key)
        )
        token = Secret(session_token) if isinstance(session_token, str) else session_token
        self.session_token: Secret | None = token if token else None

    @classmethod
    def parse(cls, text: str) -> AwsCredentials:
        """``"ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"``, the form ``api_key`` may take."""
        parts = text.strip().split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise MissingKeyError("AWS credentials must be given as ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsCredentials | None:
        key_id = env.get("AWS_ACCESS_KEY_ID")
        secret = env.get("AWS_SECRET_ACCESS_KEY")
        if not key_id or not secret:
            return None
        return cls(key_id, secret, env.get("AWS_SESSION_TOKEN") or None)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value to scrub from messages (the key id too: it names the account's key)."""
        found = [self.access_key_id, self.secret_access_key.get()]
        if self.session_token:
            found.append(self.session_token.get())
        return tuple(found)

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id='***', session_token={'***' if self.session_token else None})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:  # pragma: no cover - refuse to be pickled
        raise TypeError("AWS credentials cannot be pickled")


class CredentialSource(Protocol):
    """Something that yields current credentials; it may do blocking I/O to refresh them."""

    def get(self) -> AwsCredentials: ...


class ChainCredentials:
    """botocore credentials (possibly refreshing), frozen afresh for each request."""

    __slots__ = ("_source",)

    def __init__(self, source: Any) -> None:
        self._source = source

    def get(self) -> AwsCredentials:
        frozen = self._source.get_frozen_credentials()
        return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    def __repr__(self) -> str:
        return "ChainCredentials(botocore)"


def load_chain() -> tuple[ChainCredentials | None, str | None]:
    """botocore's default credential chain, and the region its configuration names.

    Called only when nothing explicit and no environment variable gave credentials:
    the chain may read ``~/.aws`` and, last of all, ask the instance metadata service.
    """
    try:
        import botocore.session
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise MissingKeyError(
            "bedrock signs requests with botocore: install lluminary[bedrock] (or pip install botocore)"
        ) from None
    try:
        session = botocore.session.get_session()
        source = session.get_credentials()
        region = session.get_config_variable("region")
    except Exception as exc:  # noqa: BLE001 - botocore raises many types for broken profiles; all mean "no credentials"
        raise MissingKeyError(f"the AWS credential chain failed ({type(exc).__name__})") from None
    return (ChainCredentials(source) if source is not None else None), (region or None)


def sign_headers(
    method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: AwsCredentials, region: str
) -> dict[str, str]:
    """``headers`` plus the SigV4 ``Authorization`` and ``X-Amz-*`` headers for this request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    token = credentials.session_token.get() if credentials.session_token else None
    aws = Credentials(credentials.access_key_id, credentials.secret_access_key.get(), token)
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    SigV4Auth(aws, SERVICE, region).add_auth(request)
    signed = dict(headers)
    for name in _SIGNED_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            signed[name] = value
    return signed
