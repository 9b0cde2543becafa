"""The Clarifai backend (see docs/clarifai-backend.md).

gRPC's C core logs to stderr on its own (TLS handshake failures, invalid metadata), around
segcli's one-line errors; it reads GRPC_VERBOSITY once, when grpc is first imported, so it is
set here, before any module of this package imports grpc. A GRPC_VERBOSITY the user set wins.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
