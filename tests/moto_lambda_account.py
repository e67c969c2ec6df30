"""Lambda's GetAccountSettings for moto, which lacks it (moto 5.2: "Not yet implemented").

Computed from moto's own state the way Lambda reports it: the account's concurrency quota
(moto's MOTO_LAMBDA_CONCURRENCY_QUOTA, the same variable moto's PutFunctionConcurrency
enforces; AWS's default 1000 when unset) minus every function's reserved concurrency. Install
it before `mock_aws()` starts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from moto.awslambda import urls
from moto.awslambda.models import lambda_backends
from moto.awslambda.responses import LambdaResponse

ROUTE = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"
DEFAULT_QUOTA = 1000


def get_account_settings(self: LambdaResponse) -> tuple[int, dict[str, Any], str]:
    backend = lambda_backends[self.current_account][self.region]
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", DEFAULT_QUOTA))
    reserved = sum(int(fn.reserved_concurrency or 0) for fn in backend.list_functions())
    body = {
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": quota - reserved,
        },
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(backend.list_functions())},
    }
    return 200, {}, json.dumps(body)


def install() -> None:
    urls.url_paths.setdefault(ROUTE, LambdaResponse.dispatch)
    LambdaResponse.get_account_settings = get_account_settings  # type: ignore[attr-defined]
