"""How the web app and the worker reach Temporal: one settings object, one way to connect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import TLSConfig


@dataclass(frozen=True)
class TemporalSettings:
    """Where Temporal is and how to authenticate to it (self-hosted, mTLS or Temporal Cloud)."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "linkdesk"
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    api_key: str | None = None
    rpc_timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TemporalSettings:
        """Read the `TEMPORAL_*` keys of a LinkDesk config (see service.config)."""
        return cls(
            address=config["TEMPORAL_ADDRESS"],
            namespace=config["TEMPORAL_NAMESPACE"],
            task_queue=config["TEMPORAL_TASK_QUEUE"],
            tls=bool(config["TEMPORAL_TLS"]),
            tls_cert=config["TEMPORAL_TLS_CERT"],
            tls_key=config["TEMPORAL_TLS_KEY"],
            tls_ca=config["TEMPORAL_TLS_CA"],
            api_key=config["TEMPORAL_API_KEY"],
            rpc_timeout=float(config["TEMPORAL_RPC_TIMEOUT"]),
        )

    def tls_config(self) -> TLSConfig | bool:
        """The TLS settings for the connection: files are read now, paths are configured."""
        if not (self.tls or self.tls_cert or self.api_key):
            return False
        return TLSConfig(
            server_root_ca_cert=_read(self.tls_ca),
            client_cert=_read(self.tls_cert),
            client_private_key=_read(self.tls_key),
        )


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None


async def connect(settings: TemporalSettings, *, lazy: bool = False) -> Client:
    """A client for the configured namespace; `lazy` defers dialling to the first call."""
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key,
        tls=settings.tls_config(),
        lazy=lazy,
        connect_timeout=timedelta(seconds=settings.rpc_timeout),
    )
