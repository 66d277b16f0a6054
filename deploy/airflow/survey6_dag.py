"""Airflow DAG running the survey6 aggregator stages: parse, then aggregate, then cleanup.

For sites that already schedule their pipelines with Airflow instead of the aggregator's own Quartz schedules
(``survey6 aggregate run``). Each task calls ``survey6 aggregate once --stage STAGE`` on the worker, which must see
the C&C data folder. The stages take the aggregator's lock on ``DATA/aggregator.lock`` themselves: a task that finds
another stage running waits up to ``Aggregator:LockWait`` and then exits with status 5 (conflict), which Airflow retries.

Settings (environment of the scheduler and workers, or Airflow Variables of the same names):
    SURVEY6_BIN       the survey6 executable (default: survey6 on PATH)
    SURVEY6_DATA_DIR  the C&C data folder (default: /var/lib/survey6)
    SURVEY6_SCHEDULE  cron expression of the DAG (default: hourly at minute 20, like the aggregate stage)
"""

import os
import shlex
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 ships the operator in the standard provider.
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

STAGES = ("parse", "aggregate", "cleanup")

SURVEY6_BIN = os.environ.get("SURVEY6_BIN", "survey6")
DATA_DIR = os.environ.get("SURVEY6_DATA_DIR", "/var/lib/survey6")
SCHEDULE = os.environ.get("SURVEY6_SCHEDULE", "20 * * * *")


def stage_command(stage: str) -> str:
    """The shell command of one task; quoted, because Airflow hands it to bash."""
    if stage not in STAGES:
        raise ValueError(f"unknown survey6 aggregator stage {stage!r}")
    return " ".join(
        shlex.quote(part)
        for part in (SURVEY6_BIN, "aggregate", "once", "--stage", stage, "--data-dir", DATA_DIR)
    )


default_args = {
    "owner": "survey6",
    # Failed captures are retried by the cleanup stage itself; these retries cover a busy lock or a crashed worker.
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": timedelta(hours=6),
}

with DAG(
    dag_id="survey6_aggregator",
    description="survey6: stored captures -> packets Parquet -> aggregates, then cleanup",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,  # every run takes all pending work; missed intervals need no replay
    max_active_runs=1,
    default_args=default_args,
    tags=["survey6"],
) as dag:
    tasks = [
        BashOperator(task_id=f"survey6_{stage}", bash_command=stage_command(stage))
        for stage in STAGES
    ]
    tasks[0] >> tasks[1] >> tasks[2]
