"""Pipelines and stages (v2)."""

from sandbox import clock
from sandbox.pipedrive.models import Company, Pipeline, Stage
from sandbox.pipedrive.services.common import ApiError, rfc3339

MAX_DAYS_TO_ROTTEN = 2**31 - 1  # the column's range; Pipedrive documents no bound


def serialize_pipeline(pipeline: Pipeline) -> dict:
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "order_nr": pipeline.order_nr,
        "is_deleted": False,
        "is_deal_probability_enabled": pipeline.is_deal_probability_enabled,
        "add_time": rfc3339(pipeline.add_time),
        "update_time": rfc3339(pipeline.update_time),
    }


def serialize_stage(stage: Stage) -> dict:
    return {
        "id": stage.id,
        "order_nr": stage.order_nr,
        "name": stage.name,
        "is_deleted": False,
        "deal_probability": stage.deal_probability,
        "pipeline_id": stage.pipeline_id,
        "is_deal_rot_enabled": stage.is_deal_rot_enabled,
        "days_to_rotten": stage.days_to_rotten,
        "add_time": rfc3339(stage.add_time),
        "update_time": rfc3339(stage.update_time),
    }


def create_pipeline(company: Company, body) -> Pipeline:
    """POST /api/v2/pipelines: a named pipeline, ordered after the company's others."""
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name is required")
    probability_enabled = _boolean(body, "is_deal_probability_enabled")
    now = clock.now()
    order = Pipeline.objects.filter(company=company).count() + 1
    return Pipeline.objects.create(
        company=company,
        name=name.strip(),
        order_nr=order,
        is_deal_probability_enabled=probability_enabled,
        add_time=now,
        update_time=now,
    )


def _boolean(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be a boolean")
    return value


def _days_to_rotten(body: dict) -> int | None:
    days = body.get("days_to_rotten")
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DAYS_TO_ROTTEN:
        raise ApiError(400, "days_to_rotten must be a whole number of days, 0 or more")
    return days


def create_stage(company: Company, body) -> Stage:
    """POST /api/v2/stages: a stage at the end of its pipeline (deal probability 100 unless given)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object")
    name, pipeline_id = body.get("name"), body.get("pipeline_id")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name is required")
    if isinstance(pipeline_id, bool) or not isinstance(pipeline_id, int):
        raise ApiError(400, "pipeline_id must be an integer")
    pipeline = Pipeline.objects.filter(company=company, id=pipeline_id).first()
    if pipeline is None:
        raise ApiError(404, "Pipeline not found")
    probability = body.get("deal_probability")
    if probability is None:
        probability = 100
    elif isinstance(probability, bool) or not isinstance(probability, int) or not 0 <= probability <= 100:
        raise ApiError(400, "deal_probability must be an integer from 0 to 100")
    rot_enabled, days_to_rotten = _boolean(body, "is_deal_rot_enabled"), _days_to_rotten(body)
    now = clock.now()
    return Stage.objects.create(
        pipeline=pipeline,
        name=name.strip(),
        order_nr=pipeline.stages.count() + 1,
        deal_probability=probability,
        is_deal_rot_enabled=rot_enabled,
        days_to_rotten=days_to_rotten,
        add_time=now,
        update_time=now,
    )
