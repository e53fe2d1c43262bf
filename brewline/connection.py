"""How the worker and the CLI reach Temporal: the local dev server, a cluster or Temporal Cloud.

Read from the environment so one worker binary runs anywhere:
  TEMPORAL_ADDRESS      host:port (default: the local platform's dev server)
  TEMPORAL_NAMESPACE    default "default"
  TEMPORAL_TASK_QUEUE   default "brewline-releases"
  TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY   client certificate and key files (mTLS)
  TEMPORAL_TLS_CA       server CA file, when not a public CA
  TEMPORAL_API_KEY      API key (Temporal Cloud); implies TLS
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from brewline.platform import PlatformSettings

DEFAULT_TASK_QUEUE = "brewline-releases"


class TemporalUnreachable(RuntimeError):
    """Temporal did not answer at the address tried."""


@dataclass
class ConnectionSettings:
    address: str
    namespace: str
    task_queue: str
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    api_key: str = ""

    @classmethod
    def from_env(cls, address: str | None = None) -> ConnectionSettings:
        env = os.environ
        return cls(
            address=address
            or env.get("TEMPORAL_ADDRESS")
            or PlatformSettings.load().temporal_address,
            namespace=env.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("TEMPORAL_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            tls_cert=env.get("TEMPORAL_TLS_CERT", ""),
            tls_key=env.get("TEMPORAL_TLS_KEY", ""),
            tls_ca=env.get("TEMPORAL_TLS_CA", ""),
            api_key=env.get("TEMPORAL_API_KEY", ""),
        )

    def tls(self) -> TLSConfig | bool:
        if self.tls_cert or self.tls_key:
            if not (self.tls_cert and self.tls_key):
                raise ValueError("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together")
            return TLSConfig(
                client_cert=Path(self.tls_cert).read_bytes(),
                client_private_key=Path(self.tls_key).read_bytes(),
                server_root_ca_cert=Path(self.tls_ca).read_bytes() if self.tls_ca else None,
            )
        if self.tls_ca:
            return TLSConfig(server_root_ca_cert=Path(self.tls_ca).read_bytes())
        return bool(self.api_key)


async def connect(settings: ConnectionSettings) -> Client:
    """Connect, or raise TemporalUnreachable naming the address tried."""
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            tls=settings.tls(),
            api_key=settings.api_key or None,
        )
    except RuntimeError as exc:
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.address} (namespace {settings.namespace}): "
            f"{exc}. Start the local platform with `make up`, or set TEMPORAL_ADDRESS."
        ) from exc
