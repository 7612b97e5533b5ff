"""Reading ``motoko.yaml``: task managers, executors and the orchestrator entry point.

    directory: autopot-workflow          # runtime state, relative to this file (git-ignored)
    executor: {name: local, max_parallel: 2}
    task_managers:
      sp_calc: tasks/sp_calc             # template directory, relative to this file
      train: {template: tasks/train, executor: {name: slurm}, retries: 1}
    orchestrator: workflow.orchestrator.main

Everything is checked when loaded (templates parse, executors are known, the
orchestrator is importable and async), so a typo fails before any task is submitted.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopot.errors import AutopotError, WorkflowError
from autopot.locate import workflow_dir_from_motoko
from autopot.store.schema import TaskSchema

EXECUTORS = {
    "local": "autopot.executors.local:LocalExecutor",
    "slurm": "autopot.executors.slurm:SlurmExecutor",
}


@dataclass
class TaskManagerConfig:
    name: str
    template: Path
    executor: dict[str, Any]
    retries: int = 0  # resubmissions allowed after node failure / timeout / lost process
    run_defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class MotokoConfig:
    path: Path
    directory: Path
    task_managers: dict[str, TaskManagerConfig]
    orchestrator: str | None
    executor: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, directory: str | Path | None = None) -> MotokoConfig:
        """Read and check ``path``; ``directory`` overrides its ``directory:`` (``-W``)."""
        from autopot.yamlfile import read_yaml_mapping

        path = Path(path).resolve()
        if path.is_dir():
            path = path / "motoko.yaml"
        if not path.is_file():
            raise WorkflowError("motoko.yaml not found", file=path)
        data = read_yaml_mapping(path, WorkflowError)
        unknown = set(data) - {"directory", "executor", "task_managers", "orchestrator"}
        if unknown:
            raise WorkflowError(
                f"unknown key(s) {sorted(unknown)}", file=path, field=sorted(unknown)[0]
            )
        executor = _executor_spec(data.get("executor", {"name": "local"}), path, "executor")
        managers_raw = data.get("task_managers")
        if not isinstance(managers_raw, dict) or not managers_raw:
            raise WorkflowError(
                "expected a mapping of task managers (name: template dir)",
                file=path,
                field="task_managers",
            )
        managers = {}
        for name, spec in managers_raw.items():
            where = f"task_managers.{name}"
            if isinstance(spec, str):
                spec = {"template": spec}
            if not isinstance(spec, dict) or "template" not in spec:
                raise WorkflowError(
                    "expected a template directory or {template: ...}", file=path, field=where
                )
            extra = set(spec) - {"template", "executor", "retries", "run"}
            if extra:
                raise WorkflowError(
                    f"unknown key(s) {sorted(extra)}",
                    file=path,
                    field=f"{where}.{sorted(extra)[0]}",
                )
            template = (path.parent / spec["template"]).resolve()
            retries = spec.get("retries", 0)
            if not isinstance(retries, int) or retries < 0:
                raise WorkflowError(
                    "expected a non-negative integer", file=path, field=f"{where}.retries"
                )
            managers[name] = TaskManagerConfig(
                name=name,
                template=template,
                executor=_executor_spec(spec["executor"], path, f"{where}.executor")
                if "executor" in spec
                else executor,
                retries=retries,
                run_defaults=dict(spec.get("run") or {}),
            )
        orchestrator = data.get("orchestrator")
        if orchestrator is not None and (
            not isinstance(orchestrator, str) or "." not in orchestrator
        ):
            raise WorkflowError(
                "expected module.function, e.g. workflow.orchestrator.main",
                file=path,
                field="orchestrator",
            )
        return cls(
            path=path,
            directory=Path(directory).resolve() if directory else workflow_dir_from_motoko(path),
            task_managers=managers,
            orchestrator=orchestrator,
            executor=executor,
        )

    def check_executors(self) -> None:
        """Refuse a bad executor option before a start writes anything, not at the first
        submission. Not part of :meth:`load`: commands that only read the workflow (stop,
        archive) need not have the executor's files (TLS certificates) where they run."""
        _check_executor_options(self.executor, self.path, "executor")
        for name, manager in self.task_managers.items():
            if manager.executor is not self.executor:
                where = f"task_managers.{name}.executor"
                _check_executor_options(manager.executor, self.path, where)

    def schemas(self) -> dict[str, TaskSchema]:
        """Load every template's bd.yaml (errors name the template and the field)."""
        out = {}
        for name, manager in self.task_managers.items():
            try:
                schema = TaskSchema.load(manager.template)
            except AutopotError as exc:
                raise WorkflowError(
                    f"task manager {name!r}: {exc}", file=self.path, field=f"task_managers.{name}"
                ) from None
            if schema.name != name:
                schema.name = name  # the manager's name is the task type's name
            out[name] = schema
        return out

    def load_orchestrator(self) -> Callable[..., Any]:
        """Import ``module.function`` relative to motoko.yaml's directory; must be async."""
        if not self.orchestrator:
            raise WorkflowError("no orchestrator declared", file=self.path, field="orchestrator")
        module_name, _, func_name = self.orchestrator.rpartition(".")
        module = load_module(module_name, self.path.parent, self.path)
        func = getattr(module, func_name, None)
        if func is None:
            raise WorkflowError(
                f"module {module_name!r} has no function {func_name!r}",
                file=self.path,
                field="orchestrator",
            )
        if not inspect.iscoroutinefunction(func):
            raise WorkflowError(
                f"{self.orchestrator} must be 'async def {func_name}(workflow, **params)'",
                file=self.path,
                field="orchestrator",
            )
        return func

    def orchestrator_module(self) -> Any:
        if not self.orchestrator:
            return None
        return load_module(self.orchestrator.rpartition(".")[0], self.path.parent, self.path)


def load_module(module_name: str, base: Path, source: Path) -> Any:
    """Import a module from the workflow's own directory first (not from site-packages)."""
    base_str = str(base)
    if base_str not in sys.path:
        sys.path.insert(0, base_str)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise WorkflowError(
            f"orchestrator module {module_name!r} not found ({exc})",
            file=source,
            field="orchestrator",
        ) from None
    except SyntaxError as exc:
        raise WorkflowError(
            f"syntax error in orchestrator module: {exc.msg} (line {exc.lineno})",
            file=exc.filename,
            field="orchestrator",
        ) from None


def _executor_spec(spec: Any, path: Path, where: str) -> dict[str, Any]:
    """``local``, ``slurm``, or ``package.module:Class`` for a user's own executor."""
    if isinstance(spec, str):
        spec = {"name": spec}
    name = spec.get("name") if isinstance(spec, dict) else None
    if not isinstance(name, str) or (name not in EXECUTORS and ":" not in name):
        raise WorkflowError(
            f"expected an executor name ({', '.join(EXECUTORS)} or module:Class) or {{name: ...}}",
            file=path,
            field=where,
        )
    return dict(spec)


def _check_executor_options(spec: dict[str, Any], path: Path, where: str) -> None:
    """A built-in executor's options, checked by building it (it starts nothing until
    used). A user's own ``module:Class`` checks its options when used."""
    if spec["name"] not in EXECUTORS:
        return
    options = {k: v for k, v in spec.items() if k != "name"}
    try:
        executor_class(spec["name"])(lambda outcome: None, **options)
    except AutopotError as exc:
        sub = (exc.field or "").removeprefix("executor")
        raise WorkflowError(exc.message, file=path, field=where + sub) from None
    except (TypeError, ValueError) as exc:  # a value of the wrong type compared or converted
        raise WorkflowError(f"invalid executor option: {exc}", file=path, field=where) from None


def executor_class(name: str) -> type:
    module, _, attr = EXECUTORS.get(name, name).partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise WorkflowError(
            f"executor {name!r} is not available: {exc}", field="executor"
        ) from None
