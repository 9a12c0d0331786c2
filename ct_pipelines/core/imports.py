"""Heavy third-party imports made cheaper: Great Expectations without the modules it never uses here.

Importing ``great_expectations`` imports every expectation it ships, so that its registry is complete.
One of them (KL divergence) and two KS-test metrics import ``scipy.stats`` and ``altair`` at module
level, although only those expectations' methods call them: about a third of GX's import time on the
development machines (1 s of 2.8 s quiet, 2-2.5 s of 4.5 s under load; the ``scipy.optimize`` part of
it comes back in protect, which needs it). :func:`import_great_expectations` puts stand-ins for both in
``sys.modules``: the names import at once, and the real module runs on its first attribute access, so a
dataset that does use those expectations gets it, a moment later.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

#: Imported by GX at module level, used only inside a few expectations' methods.
GX_LAZY_MODULES = ("scipy.stats", "altair")
_LOCK = threading.RLock()


class _Deferred(ModuleType):
    """Stands in ``sys.modules`` for a module not run yet; the first attribute it lacks runs the real one.

    (``importlib.util.LazyLoader`` is no use here: on Python 3.11 an ``import`` of the name already
    reads the module's ``__spec__``, which runs it.)"""

    def __getattr__(self, attr: str) -> Any:
        return getattr(_materialize(self.__name__), attr)


def _materialize(name: str) -> ModuleType:
    with _LOCK:
        module = sys.modules.get(name)
        if isinstance(module, _Deferred):
            del sys.modules[name]  # else the import below would find the stand-in
            module = importlib.import_module(name)
        return module if module is not None else importlib.import_module(name)


def lazy_module(name: str) -> None:
    """Put a stand-in for ``name`` in ``sys.modules`` unless it is imported already (or not installed)."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)  # imports the parent package (scipy itself is cheap)
    if spec is None:
        return
    stand_in = _Deferred(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in


def import_great_expectations() -> ModuleType:
    """``great_expectations``, imported without running ``scipy.stats`` and ``altair`` until used."""
    with _LOCK:
        if "great_expectations" not in sys.modules:
            for name in GX_LAZY_MODULES:
                lazy_module(name)
    import great_expectations

    return great_expectations
