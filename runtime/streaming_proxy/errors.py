"""The runtime's exceptions: each carries how it is reported (a Lambda error type or an HTTP
status) and a message a user can act on."""

from __future__ import annotations


class LambdaError(Exception):
    """A failure reported to Lambda under an error type (``Runtime.*``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class InitError(LambdaError):
    """Cold start cannot succeed; reported through /runtime/init/error, then the process exits."""


class BodyBroke(LambdaError):
    """The upstream's body broke off: a started response ends with this error's trailers, one
    that had not started yet becomes a 502."""


class RequestError(Exception):
    """An invocation fails before the prelude is sent; becomes a clean JSON error response.

    ``message`` goes to the caller; ``detail`` (the upstream's stderr, say) only to the log;
    ``headers`` go out with the response (``Allow`` on a 405).
    """

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or message
        self.headers = headers


class BadEvent(RequestError):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class UpstreamFailed(Exception):
    """The upstream exited or did not become healthy in time; the message says which.

    ``summary`` leaves out the upstream's stderr, which belongs in the log, not in a response.
    """

    def __init__(self, message: str, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message


class UpstreamStarting(UpstreamFailed):
    """The invocation's deadline came while the upstream was still starting."""
