"""Test-run layout for pytest-xdist: which tests must share one worker.

``scripts/test.sh`` runs the suite on two workers (``-n 2 --dist loadgroup``). Most tests
are spread test by test; two groups stay whole, each on one worker, in order:

- ``production``: the real-process federation (one SuperLink and its SuperNodes, set up
  once for the module and shared by its tests);
- ``simulations``: everything that starts Flower's simulation runtime (Ray), so that two
  Ray instances never start side by side on a 2-core machine.

Without xdist (``python -m pytest`` alone) the groups mean nothing and the order is as usual.
"""

from __future__ import annotations

import pytest

GROUPS = {
    "tests/production/test_production_federation.py": "production",
    "tests/simulation/test_simulation_e2e.py": "simulations",
    "tests/simulation/test_simulation_runtime.py": "simulations",
    "tests/robustness/test_robustness_e2e.py": "simulations",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = GROUPS.get(item.nodeid.split("::", 1)[0])
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
