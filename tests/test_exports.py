from __future__ import annotations

import importlib
import types

import pytest

import outlit_async
import outlit_async.testing

PUBLIC_MODULES = (outlit_async, outlit_async.testing)


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_a_sorted_tuple(module: types.ModuleType) -> None:
    """__all__ is a tuple, in ruff's isort-style order (RUF022), with no repeats."""
    assert isinstance(module.__all__, tuple)
    assert list(module.__all__) == sorted(module.__all__, key=_isort_key)
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    """Every public name of the module is in __all__, and nothing else is."""
    assert set(module.__all__) - {"__version__"} == _public_names(module)


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_name_in_all_is_importable(module: types.ModuleType) -> None:
    """`from module import name` works for every name of __all__."""
    fresh = importlib.import_module(module.__name__)
    for name in module.__all__:
        assert getattr(fresh, name) is not None, name


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_classes_name_their_public_module(module: types.ModuleType) -> None:
    """Each exported class reports the public module, not a private one."""
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type):
            assert value.__module__ == module.__name__, name


def test_version_is_a_string() -> None:
    """__version__ is exported and is a non-empty version string."""
    assert "__version__" in outlit_async.__all__
    assert isinstance(outlit_async.__version__, str)
    assert outlit_async.__version__[0].isdigit()
