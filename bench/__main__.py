"""Run every benchmark: ``python -m bench [--quick]``."""

from __future__ import annotations

import argparse

from . import across_hosts
from . import dataset_upload
from . import engine_vs_keras
from . import goals
from . import guard_cost
from . import http_throughput
from . import params_vs_keras
from . import predict_latency
from . import predict_while_training
from . import seed_vs_service
from . import sweep_vs_jobs
from . import warm_seed_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer specs, shorter runs")
    options = parser.parse_args()
    engine_vs_keras.main(quick=options.quick)
    params_vs_keras.main(quick=options.quick)
    http_throughput.main(quick=options.quick)
    seed_vs_service.main(quick=options.quick)
    warm_seed_job.main(quick=options.quick)
    guard_cost.main(quick=options.quick)
    dataset_upload.main(quick=options.quick)
    predict_latency.main(quick=options.quick)
    predict_while_training.main(quick=options.quick)
    sweep_vs_jobs.main(quick=options.quick)
    across_hosts.main(quick=options.quick)
    print(goals.table())


if __name__ == "__main__":
    main()
