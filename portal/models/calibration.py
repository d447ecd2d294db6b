"""Fit calibrations: overheads vLLM measured at a real start-up, for later estimates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._types import UTCDateTime, compact, iso, utcnow


class FitCalibration(db.Model):  # type: ignore[name-defined,misc]
    """Overheads parsed from one vLLM start-up log, keyed by (GPU profile, vLLM version, model shape, tp)."""

    __tablename__ = "fit_calibrations"
    __table_args__ = (Index("ix_fit_calibrations_key", "gpu_profile", "vllm_version", "shape_key", "tensor_parallel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gpu_profile: Mapped[str] = mapped_column(String(128))
    vllm_version: Mapped[str] = mapped_column(String(32))
    shape_key: Mapped[str] = mapped_column(String(256))
    tensor_parallel: Mapped[int] = mapped_column(Integer, default=1)
    model_ref: Mapped[str | None] = mapped_column(String(256))
    activation_gib: Mapped[float] = mapped_column(Float)
    non_torch_gib: Mapped[float] = mapped_column(Float)
    cuda_graph_gib: Mapped[float | None] = mapped_column(Float)
    kv_cache_gib: Mapped[float | None] = mapped_column(Float)
    kv_tokens: Mapped[int | None] = mapped_column(Integer)
    max_model_len: Mapped[int | None] = mapped_column(Integer)
    total_memory_gib: Mapped[float | None] = mapped_column(Float)
    log_format: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256), default="anonymous")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """The calibration as the API shows it."""
        return compact(
            {
                "id": self.id,
                "gpuType": self.gpu_profile,
                "vllmVersion": self.vllm_version,
                "shapeKey": self.shape_key,
                "tensorParallelSize": self.tensor_parallel,
                "model": self.model_ref,
                "activationGiB": self.activation_gib,
                "nonTorchGiB": self.non_torch_gib,
                "cudaGraphGiB": self.cuda_graph_gib,
                "kvCacheGiB": self.kv_cache_gib,
                "kvTokens": self.kv_tokens,
                "maxModelLen": self.max_model_len,
                "totalMemoryGiB": self.total_memory_gib,
                "logFormat": self.log_format,
                "actor": self.actor,
                "createdAt": iso(self.created_at),
            }
        )
