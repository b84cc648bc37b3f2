"""A Prometheus endpoint for the Metrics operator (the ``prometheus`` extra).

:class:`PrometheusMetrics` is an OpenTelemetry ``MeterProvider`` wired to a
Prometheus reader on its own ``CollectorRegistry`` (not prometheus_client's
global one, so two of them, or a test, never collide). Hand its
``meter_provider`` to :class:`~lluminary.Metrics`, then either let it serve
``/metrics`` from a background thread, or mount it in your own web app.

Serve from a thread (any app, sync or async)::

    from lluminary import Engine, Metrics
    from lluminary.observability import PrometheusMetrics

    prom = PrometheusMetrics()
    server = prom.serve(port=9464)            # http://127.0.0.1:9464/metrics
    engine = Engine([Metrics(prom.meter_provider)])

Mount in aiohttp::

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = prom.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/metrics", metrics)

Mount in any ASGI app (Starlette, FastAPI)::

    from prometheus_client import make_asgi_app
    app.mount("/metrics", make_asgi_app(registry=prom.registry))

A process can only export its own metrics: the endpoint shows the requests
made through engines in the same process. ``lluminary metrics`` serves one for
its own synthetic probes (see :mod:`lluminary.commands.metrics`); an
application exports its traffic by running one of the snippets above.

The default address is 127.0.0.1: metrics name models and tenants, so exposing
them on every interface is a decision to make explicitly (``host="0.0.0.0"``).
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import CollectorRegistry

__all__ = ["DEFAULT_PORT", "MetricsServer", "PrometheusMetrics", "serve_metrics"]

#: The port OpenTelemetry's Prometheus exporter uses by convention.
DEFAULT_PORT = 9464


class MetricsServer:
    """A running ``/metrics`` HTTP server (a daemon thread); ``close()`` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port.

        Blocks until the serving thread has ended, which takes up to half a
        second: prometheus_client's server polls for shutdown at that interval.
        """
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PrometheusMetrics:
    """A ``MeterProvider`` whose metrics Prometheus can scrape.

    ``service_name`` goes into the resource (Prometheus shows it in
    ``target_info``); pass ``resource`` instead for full control. With
    ``set_global=True`` it also becomes OpenTelemetry's global meter provider,
    so ``Metrics()`` with no argument records into it.
    """

    def __init__(
        self,
        *,
        service_name: str = "lluminary",
        resource: Resource | None = None,
        registry: CollectorRegistry | None = None,
        set_global: bool = False,
    ) -> None:
        # Imported here: the exporter and prometheus_client are the optional
        # ``prometheus`` extra, needed only by whoever builds one of these.
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource as _Resource
        from prometheus_client import CollectorRegistry as _Registry

        self.registry: CollectorRegistry = registry if registry is not None else _Registry()
        self.reader = PrometheusMetricReader(registry=self.registry)
        if resource is None:
            resource = _Resource.create({"service.name": service_name})
        self.meter_provider: MeterProvider = MeterProvider(metric_readers=[self.reader], resource=resource)
        if set_global:
            metrics.set_meter_provider(self.meter_provider)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type, for the given ``Accept`` header.

        Collection is synchronous and proportional to the number of series; an
        app with very many can call it through ``anyio.to_thread.run_sync``.
        """
        from prometheus_client.exposition import choose_encoder

        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def serve(self, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` from a daemon thread; ``port=0`` picks a free port."""
        from prometheus_client import start_http_server

        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)

    def shutdown(self) -> None:
        """Stop the meter provider and unregister from the registry."""
        self.meter_provider.shutdown()


def serve_metrics(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> tuple[PrometheusMetrics, MetricsServer]:
    """The one-liner: a global Prometheus meter provider, served at ``host:port``.

    ``Metrics()`` operators built afterwards with no ``meter_provider`` record into
    it. Returns both so the caller can close the server and shut the provider down.
    """
    prom = PrometheusMetrics(set_global=True)
    return prom, prom.serve(port, host)
