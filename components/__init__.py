"""Pulumi components of librechat-lambda, one AWS concern per module.

- `config/`: the stack configuration schema (one module per section), validated up front.
- `aws_rules`: AWS naming and ARN rules, shared by the configuration and the components.
- `contract`: what the function and its runtime agree on (commands, paths, variables).
- `network`: the function's subnets and security groups, given or looked up.
- `image`: ECR repository and the single-platform runtime image, pinned by digest.
- `function`: the Lambda function, its IAM role, log group and optional provisioned alias.
- `api`: the REST API that streams the function's responses.
- `domain`: the custom domain, certificate and DNS records.
"""

import sys
from pathlib import Path

# The program reads the runtime's own declarations (runtime/streaming_proxy/variables.py, the
# metrics namespace) instead of copying them: `runtime/` is a source root here as it is for
# pytest and mypy (pyproject.toml), the one place the Pulumi program and ops/ learn it.
_RUNTIME = str(Path(__file__).resolve().parent.parent / "runtime")
if _RUNTIME not in sys.path:
    sys.path.append(_RUNTIME)
