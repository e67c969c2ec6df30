"""Pulumi components of librechat-lambda, one AWS concern per module.

- `config`: the stack configuration, typed and validated up front.
- `network`: the function's subnets and security groups, given or looked up.
- `image`: ECR repository and the single-platform runtime image, pinned by digest.
- `function`: the Lambda function, its IAM role, log group and optional provisioned alias.
- `api`: the REST API that streams the function's responses.
- `domain`: the custom domain, certificate and DNS records.
"""
