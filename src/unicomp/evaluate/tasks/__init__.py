"""Task specs (data) and the registry that finds them by name."""

from unicomp.evaluate.tasks.registry import expand_task_names, get_task, list_tasks
from unicomp.evaluate.tasks.spec import DatasetRef, TaskSpec

__all__ = ["DatasetRef", "TaskSpec", "expand_task_names", "get_task", "list_tasks"]
