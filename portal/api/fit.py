"""Fit API: the what-if calculator and calibrations from real vLLM start-up logs."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.errors import InvalidInput
from portal.schemas.fit import CalibrationBody, CalibrationListArgs, CalibrationQuery, FitArgs, what_if_request
from portal.services import calibration
from portal.services.fit_calculator import what_if

blp = Blueprint("fit", __name__, description="Will it fit? What-if estimates and calibration from real start-ups")

MAX_UPLOAD_BYTES = calibration.MAX_LOG_BYTES


def _calibrate(log: str, body: dict[str, Any]) -> dict[str, Any]:
    return calibration.calibrate(
        log,
        gpu_type=body["gpuType"],
        hf_model_id=body.get("hfModelId") or None,
        model_id=body.get("model") or None,
        vllm_version=body.get("vllmVersion"),
        tensor_parallel=body.get("tensorParallelSize"),
        actor=auth.current_actor(),
    )


@blp.route("/fit")
class Fit(MethodView):
    """What-if: will this model fit these GPUs with these vLLM settings?"""

    @blp.arguments(FitArgs, location="query")
    @blp.response(200)
    @blp.alt_response(404, description="Unknown catalog id, Hub model or GPU type")
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Full fit report per GPU (verdict, memory split, KV tokens, concurrency, fixes, flags, sources)."""
        return what_if(what_if_request(args))


@blp.route("/fit/calibrations")
class Calibrations(MethodView):
    """Overheads measured at real vLLM start-ups."""

    @blp.arguments(CalibrationListArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest calibrations first (`?gpuType=` for one GPU profile)."""
        return {"calibrations": calibration.list_calibrations(args["gpuType"] or None)}

    @blp.arguments(CalibrationBody)
    @blp.response(201)
    @blp.alt_response(400, description="Not a vLLM start-up log, or missing figures (details.missing)")
    @blp.alt_response(404, description="Unknown GPU type, catalog id or Hub model")
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Parse a pasted start-up log and store its overheads for later estimates."""
        return _calibrate(body["log"], body), 201


@blp.route("/fit/calibrations/upload")
class CalibrationUpload(MethodView):
    """The same, with the log file as the request body (`curl --data-binary @vllm.log`)."""

    @blp.arguments(CalibrationQuery, location="query")
    @blp.doc(
        requestBody={
            "required": True,
            "description": "The vLLM start-up log file, as sent (up to 5 MiB)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    )
    @blp.response(201)
    @blp.alt_response(400, description="Not a vLLM start-up log, or missing figures (details.missing)")
    @blp.alt_response(404, description="Unknown GPU type, catalog id or Hub model")
    @blp.alt_response(413, description="The log is larger than 5 MiB")
    def post(self, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Parse an uploaded start-up log and store its overheads."""
        raw = request.get_data(cache=False)
        if len(raw) > MAX_UPLOAD_BYTES:
            raise InvalidInput("the log file is larger than 5 MiB: upload the start-up part", code="log_too_large")
        return _calibrate(raw.decode("utf-8", errors="replace"), args), 201


@blp.route("/fit/calibrations/<int:calibration_id>")
class Calibration(MethodView):
    """One calibration."""

    @blp.response(200)
    @blp.alt_response(404, description="No such calibration")
    def get(self, calibration_id: int) -> dict[str, Any]:
        """The stored overheads and where they came from."""
        return calibration.get_calibration(calibration_id)
