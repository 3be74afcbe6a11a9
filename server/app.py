"""The coordinator's Flower ServerApp: the same app in simulation and in production."""

from __future__ import annotations

import logging

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from federation.errors import CesagramError
from federation.runconfig import RunSettings
from deploy.settings import DeploymentSettings
from server.run import run_federation

log = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Turn Flower's flat run config into typed settings and run the federation.

    A production run's config also holds ``deployment.*`` keys (SuperLink, SecAgg+,
    resume); a simulated run has none.
    """
    try:
        run = RunSettings.from_flat(context.run_config)
        run_federation(grid, run, DeploymentSettings.from_run_config(context.run_config))
    except CesagramError as error:
        log.error("run stopped: %s", error)
        raise SystemExit(f"error: {error}") from None
