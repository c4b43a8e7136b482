"""``{% health_summary %}``: the health figures (audit.health) on any admin page, e.g. the index."""

from django import template

from audit.health import health

register = template.Library()


@register.inclusion_tag("audit/includes/health_summary.html")
def health_summary():
    return {"health": health()}
