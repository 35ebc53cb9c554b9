"""The Conveyor Django project. ``celery_app`` is loaded with Django so tasks use it."""

from .celery import app as celery_app

__all__ = ("celery_app",)
