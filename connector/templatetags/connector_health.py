"""``{% health_summary %}``: the health figures (connector.operations.health) on any admin page."""

from django import template

from connector.operations.health import health

register = template.Library()


@register.inclusion_tag("audit/includes/health_summary.html", takes_context=True)
def health_summary(context):
    request = context.get("request")
    return {"health": health(user=getattr(request, "user", None))}
