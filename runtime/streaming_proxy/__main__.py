"""``python -m streaming_proxy``: the image entrypoint."""

from streaming_proxy.main import main

raise SystemExit(main())
