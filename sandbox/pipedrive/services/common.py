"""What every part of the emulated Pipedrive shares: the API error, timestamps, the record models."""

from sandbox.pipedrive.models import Deal, Entity, Organization, Person


class ApiError(Exception):
    """A request Pipedrive would refuse: becomes the error envelope with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def rfc3339(moment) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


MODELS = {Entity.ORGANIZATION: Organization, Entity.PERSON: Person, Entity.DEAL: Deal}


def drop_none(data: dict) -> dict:
    # The spec marks most fields non-nullable: absent beats null.
    return {k: v for k, v in data.items() if v is not None or k == "custom_fields"}


def entity_of(record) -> str:
    return {Organization: Entity.ORGANIZATION, Person: Entity.PERSON, Deal: Entity.DEAL}[type(record)]
