"""A Lambda custom runtime that serves LibreChat (or any HTTP server) with response streaming.

The image entrypoint runs ``python -m streaming_proxy``. At cold start it fetches the config
object and the secrets, starts the upstream server on localhost and waits until it is healthy;
then every API Gateway event becomes an HTTP request to the upstream whose response is streamed
back through the Lambda Runtime API streaming protocol (JSON prelude, 8 NUL bytes, body chunks,
error trailers). awslambdaric cannot stream from Python, so the protocol is spoken here.

Environment variables (all optional except ``AWS_LAMBDA_RUNTIME_API``, which Lambda sets):

=========================  ==================================  ==============================================
Variable                   Default                             Meaning
=========================  ==================================  ==============================================
AWS_LAMBDA_RUNTIME_API     (set by Lambda)                     host:port of the Runtime API
AWS_LAMBDA_FUNCTION_NAME   (set by Lambda; ``local``)          FunctionName dimension of the runtime's metrics
AWS_LAMBDA_INITIALIZATION_TYPE (set by Lambda)                 ``snap-start``: the SnapStart lifecycle (before-
                                                               snapshot, restore/next, after-restore; snapstart.py)
AWS_LAMBDA_MAX_CONCURRENCY 1                                   invocations served at once; Managed Instances set
                                                               it (and AWS_LAMBDA_INITIALIZATION_TYPE=lambda-
                                                               managed-instances): no freeze, so no background hold
UPSTREAM_COMMAND           ``node /app/api/server/index.js``   shell-style command line of the upstream server
UPSTREAM_HOST              127.0.0.1                           address the upstream listens on (given as HOST)
UPSTREAM_PORT              3080                                port the upstream listens on (given as PORT)
UPSTREAM_HEALTH_PATH       /health                             GET path that answers 200 once listening; ready
                                                               also needs start-up complete: /readyz 200, or the
                                                               line LibreChat logs at its end (readiness.py)
UPSTREAM_READY_TIMEOUT     60                                  seconds the upstream may take to become healthy,
                                                               counting only time spent waiting for it (frozen
                                                               time between invocations does not count)
UPSTREAM_INIT_WAIT         9.5                                 seconds of Lambda's 10 s init spent waiting for
                                                               health before init ends anyway ("async init")
UPSTREAM_DIRS              /tmp/librechat/{uploads,images,     directories (":"-separated) created before the
                           logs}                               upstream starts: /tmp starts empty in Lambda and
                                                               the image links LibreChat's writable paths there
CONFIG_S3_BUCKET           (unset)                             bucket of the config object (with the key)
CONFIG_S3_KEY              (unset)                             key of the config object (with the bucket)
CONFIG_PATH                /tmp/librechat.yaml                 where the config is written; given to the
                                                               upstream as CONFIG_PATH
CONFIG_DOMAIN_FROM         (unset)                             domain replaced everywhere in the config by
                                                               the host of DOMAIN_SERVER
DOMAIN_SERVER              (unset)                             public URL of the server (LibreChat's own)
SSM_SECRETS                (unset)                             JSON ``{"ENV_NAME": "/ssm/parameter"}``, resolved
                                                               with decryption into the upstream's env only
BASE_PATH                  (unset)                             path prefix stripped from requests (custom
                                                               domain base path mappings)
SSE_KEEPALIVE_INTERVAL     20                                  seconds of silence on a text/event-stream
                                                               response before an SSE comment is sent; 0 = off
DEADLINE_MARGIN            0.5                                 seconds before the invocation deadline at which
                                                               the response is ended and the upstream aborted
STREAM_IDLE_TIMEOUT        120                                 seconds a started response may go without a byte
                                                               from the upstream (keep-alive comments do not
                                                               count) before it is ended with Runtime.StreamError
                                                               trailers; 0 = off
BACKGROUND_HOLD            on                                  hold ``/next`` while work a chat answer started
                                                               runs (the job, then the title); never on Managed
                                                               Instances
BACKGROUND_HOLD_PATH       ``^/api/agents/chat(/[^/]+)?$``     regex of POST paths that may start background work
BACKGROUND_STATUS_PATH     ``/api/agents/chat/status/{id}``    status path polled with the caller's credentials
BACKGROUND_POLL_INTERVAL   0.5                                 seconds between status polls
BACKGROUND_TITLE_WAIT      20                                  seconds the hold waits for a new conversation's
                                                               title after the answer; 0 = off (so when
                                                               LibreChat's TITLE_CONVO is set but not "true")
STREAM_CHECK_PATH          ``/_runtime/stream-check``          GET path the runtime answers itself with a paced
                                                               event stream (``n`` <= 20 events, ``interval_ms``
                                                               <= 1000 apart); empty = off (stream_check.py)
LOG_LEVEL                  INFO                                DEBUG logs every request, INFO too; WARNING less
                                                               (lines carrying metrics are always written)
=========================  ==================================  ==============================================

Request and cold-start log lines carry CloudWatch Embedded Metric Format (metrics.py).
boto3 honours ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL_SSM``.
"""
