"""The AWS identities librechat-lambda's GitHub workflows use, as a separate Pulumi program.

`ci/__main__.py` wires these modules: `settings` (the program's stack config, validated),
`policies` (trust and permission documents, pure data), `oidc` (GitHub's OIDC provider, created
or reused) and `roles` (per deployed stack: a preview role and a deploy role).
"""
