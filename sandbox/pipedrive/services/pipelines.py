"""Pipelines and stages (v2)."""

from sandbox import clock
from sandbox.pipedrive.models import Company, Pipeline, Stage
from sandbox.pipedrive.services.common import ApiError, rfc3339


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
        "is_deal_rot_enabled": False,
        "days_to_rotten": None,
        "add_time": rfc3339(stage.add_time),
        "update_time": rfc3339(stage.update_time),
    }


def create_pipeline(company: Company, body) -> Pipeline:
    """POST /api/v2/pipelines: a named pipeline, ordered after the company's others."""
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name is required")
    now = clock.now()
    order = Pipeline.objects.filter(company=company).count() + 1
    return Pipeline.objects.create(
        company=company, name=name.strip(), order_nr=order, add_time=now, update_time=now
    )


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
    now = clock.now()
    return Stage.objects.create(
        pipeline=pipeline,
        name=name.strip(),
        order_nr=pipeline.stages.count() + 1,
        deal_probability=probability,
        add_time=now,
        update_time=now,
    )
