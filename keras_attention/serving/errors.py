"""Errors a request can meet, each with the HTTP status TF Serving gives
its gRPC code (`http_server.cc`, `ToHTTPStatusCode`)."""


class ServingError(Exception):
    """An error answered as `{"error": message}` with `status`.

    Example:

    >>> error = NotFound("Servable not found for request: Latest(translator)")
    >>> error.status, error.message, isinstance(error, ServingError)
    (404, 'Servable not found for request: Latest(translator)', True)
    """

    status = 500

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidArgument(ServingError):
    """Bad input: TF Serving's INVALID_ARGUMENT."""

    status = 400


class NotFound(ServingError):
    """Unknown model or version: NOT_FOUND."""

    status = 404


class PayloadTooLarge(ServingError):
    """A body over the server's limit."""

    status = 413


class ResourceExhausted(ServingError):
    """RESOURCE_EXHAUSTED (e.g. the server is shutting down or overloaded)."""

    status = 429


class Unavailable(ServingError):
    """UNAVAILABLE: the model exists but has no loaded version yet."""

    status = 503
