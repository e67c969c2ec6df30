"""``python -m streaming_proxy``: the image entrypoint, which wires the request path (proxy.py)
into the cold start and event loop (main.py)."""

from streaming_proxy.main import HandlerFactory, main


def request_path() -> HandlerFactory:
    """Imported once the upstream is starting, so its imports overlap the boot."""
    from streaming_proxy.proxy import Proxy  # noqa: PLC0415

    return Proxy


raise SystemExit(main(request_path))
