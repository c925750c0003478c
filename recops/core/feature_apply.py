"""``feast apply`` of the declarative repo in ``features/`` without touching the process: its
definitions loaded afresh with the settings' values (they read them through
``features/repo_env.py``) and applied by Feast's own apply function, or Feast's CLI in a child
process (``env=``) for the kinds of object only Feast's CLI collects.
:func:`recops.core.feature_store.apply_features` decides when to apply and which way.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recops.core.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

REPO_ENV_MODULE = "repo_env"
"""The feature repo's module whose ``VALUES`` the definitions read their settings from."""


class _RepoFinder(importlib.abc.MetaPathFinder):
    """Finds the feature repo's own top-level modules (``from entities import user``) in its
    folder, and nothing else: no folder joins ``sys.path``."""

    def __init__(self, repo: Path, names: set[str]) -> None:
        self.repo, self.names = repo, names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if path is None and name in self.names:
            return importlib.util.spec_from_file_location(name, self.repo / f"{name}.py")
        return None


@contextmanager
def _repo_modules(settings: Settings) -> Iterator[list[Any] | None]:
    """The feature repo's modules, loaded afresh with the settings' values (``repo_env.VALUES``,
    never the process environment), as ``feast apply`` would import them; ``None`` for a repo with
    sub-folders. The modules' names leave ``sys.modules`` afterwards (what they shadowed comes
    back), so the next home loads its own."""
    from feast.repo_operations import get_repo_files

    repo = settings.feature_repo_path.resolve()
    files = get_repo_files(repo)
    names = [path.stem for path in files]
    if any(path.parent != repo for path in files) or REPO_ENV_MODULE not in names:
        yield None
        return
    shadowed = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    finder = _RepoFinder(repo, set(names))
    bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # as feast apply: no __pycache__ in the repo
    sys.meta_path.insert(0, finder)
    try:
        importlib.import_module(REPO_ENV_MODULE).VALUES = settings.tool_env()
        yield [importlib.import_module(name) for name in names]
    finally:
        sys.meta_path.remove(finder)
        sys.dont_write_bytecode = bytecode
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(shadowed)


def _repo_contents(modules: list[Any], project: str) -> Any | None:
    """What ``feast apply`` collects from the modules (Feast's ``parse_repo``) for the kinds of
    object this repo defines; ``None`` if a module holds a kind left to Feast's CLI."""
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView, Project
    from feast.batch_feature_view import BatchFeatureView
    from feast.data_source import DataSource, KafkaSource, KinesisSource, PushSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.labeling.label_view import LabelView
    from feast.permissions.permission import Permission
    from feast.repo_contents import RepoContents
    from feast.stream_feature_view import StreamFeatureView

    left_to_cli = (StreamFeatureView, BatchFeatureView, LabelView, Permission, PushSource, KafkaSource, KinesisSource)
    kinds = {DataSource: "data_sources", Entity: "entities", FeatureService: "feature_services",
             OnDemandFeatureView: "on_demand_feature_views", Project: "projects"}
    repo = RepoContents(projects=[], data_sources=[], entities=[], feature_views=[], feature_services=[],
                        on_demand_feature_views=[], stream_feature_views=[], label_views=[], permissions=[])

    def add(found: list, obj: Any) -> None:
        if not any(obj is known for known in found):
            found.append(obj)

    for module in modules:
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, left_to_cli):
                return None
            if isinstance(obj, FeatureView):
                add(repo.feature_views, obj)
                if obj.batch_source is not None:
                    add(repo.data_sources, obj.batch_source)
                if obj.stream_source is not None:
                    return None
                continue
            for kind, field in kinds.items():
                if isinstance(obj, kind):
                    add(getattr(repo, field), obj)
    if not repo.projects:
        repo.projects.append(Project(name=project, description=""))
    if len(repo.projects) != 1 or repo.projects[0].name != project:
        return None  # Feast's CLI reports what is wrong with the projects
    repo.entities.append(DUMMY_ENTITY)
    return repo


def apply_in_process(settings: Settings, store: FeatureStore) -> bool:
    """``feast apply``'s work in this process, into ``store`` (the settings' own): the repo's
    objects (loaded with the settings' values) applied through Feast's own
    ``apply_total_with_repo_instance``, its console output kept for an error. False if the repo
    needs Feast's CLI."""
    import io
    from contextlib import redirect_stdout

    from feast.repo_operations import apply_total_with_repo_instance

    with _repo_modules(settings) as modules:
        repo = None if modules is None else _repo_contents(modules, settings.feast_project)
        if repo is None:
            return False
        output = io.StringIO()
        try:
            with redirect_stdout(output):
                apply_total_with_repo_instance(store, settings.feast_project, store.registry, repo,
                                               skip_source_validation=False)
        except Exception as exc:
            raise RuntimeError(f"feast apply failed in {settings.feature_repo_path}: {exc}\n{output.getvalue()}") from exc
    return True


def apply_with_cli(settings: Settings) -> None:
    """Feast's own CLI in a child process (``env=``: the settings over the environment), for a
    repo whose objects ``_repo_contents`` leaves to it."""
    feast_cli = Path(sys.executable).with_name("feast")
    proc = subprocess.run(
        [str(feast_cli), "apply"],
        cwd=settings.feature_repo_path,
        env={**os.environ, **settings.tool_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"feast apply failed in {settings.feature_repo_path}:\n{proc.stdout}\n{proc.stderr}")
