"""The task queue's admin (django-q2's schedules, finished and failed tasks, queued tasks), read-only
for everyone but superusers.

A schedule or a queued task names any dotted function, which a worker then imports and calls: adding
or changing one is running code on the worker (``builtins.open``, ``os.system``). The connector makes
its own schedules in code and migrations, so staff (the "Integration admin" role included) only look
at these; a superuser, who can run code anyway, keeps django-q2's full admin.
"""

from typing import TYPE_CHECKING

from django.contrib import admin
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success

if TYPE_CHECKING:
    # The mixin only ever sits in front of a ModelAdmin (django-q2's admins): type it as one
    # so super() and admin.site.register() see the ModelAdmin methods.
    _ModelAdminBase = admin.ModelAdmin
else:
    _ModelAdminBase = object


class SuperuserWritesOnly(_ModelAdminBase):
    """Adding, changing and deleting only for superusers; viewing as the permissions allow."""

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # "Resubmit selected tasks" enqueues the stored function again.
        actions = super().get_actions(request)
        return actions if request.user.is_superuser else {}


class ScheduleAdmin(SuperuserWritesOnly, q_admin.ScheduleAdmin):
    pass


class TaskAdmin(SuperuserWritesOnly, q_admin.TaskAdmin):
    pass


class FailAdmin(SuperuserWritesOnly, q_admin.FailAdmin):
    pass


class QueueAdmin(SuperuserWritesOnly, q_admin.QueueAdmin):
    pass


REPLACED = {Schedule: ScheduleAdmin, Success: TaskAdmin, Failure: FailAdmin, OrmQ: QueueAdmin}

for model, model_admin in REPLACED.items():
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
