"""A Lambda custom runtime that serves LibreChat (or any HTTP server) with response streaming.

The image entrypoint runs ``python -m streaming_proxy``. At cold start it fetches the config
object and the secrets, starts the upstream server on localhost and waits until it is healthy;
then every API Gateway event becomes an HTTP request to the upstream whose response is streamed
back through the Lambda Runtime API streaming protocol (JSON prelude, 8 NUL bytes, body chunks,
error trailers). awslambdaric cannot stream from Python, so the protocol is spoken here.

Its environment variables, with their defaults and meanings, are declared once in
``variables.py`` and printed in docs/runtime-variables.md.

Request and cold-start log lines carry CloudWatch Embedded Metric Format (metrics.py).
"""
