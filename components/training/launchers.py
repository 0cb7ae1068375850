"""Whether this process was started by a launcher that starts one process per rank (torchrun, SLURM's srun, a
Kubeflow PyTorchJob or an indexed Job setting the same variables), and which rank it is. Lightning reads the same
environments; a stage run under one trains its share and leaves the recording to rank 0."""

from __future__ import annotations

import os

from lightning.fabric.plugins.environments import LSFEnvironment, SLURMEnvironment, TorchElasticEnvironment

LAUNCHERS = {"torchrun": TorchElasticEnvironment, "SLURM": SLURMEnvironment, "LSF": LSFEnvironment}
RANK_VARIABLES = ("MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK")
"""What a Kubernetes PyTorchJob or indexed Job sets for every process (Lightning reads them too)."""


def rank_launcher() -> str | None:
    """The launcher this process's environment names, or None (started by hand, or by the pipeline)."""
    found = next((name for name, environment in LAUNCHERS.items() if environment.detect()), None)
    if found is None and all(variable in os.environ for variable in RANK_VARIABLES):
        return "a launcher setting " + ", ".join(RANK_VARIABLES)
    return found


def global_rank() -> int:
    """This process's rank among all a launcher started (0 when none did)."""
    for variable in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0
