"""New SLURM executor options are checked like the others: one line naming the option."""

from __future__ import annotations

import pytest

from autopot.errors import ExecutorError
from autopot.executors.slurm import SlurmExecutor


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_queued": 0}, "executor.max_queued"),
        ({"max_queued": "5"}, "executor.max_queued"),
        ({"group_size": 0}, "executor.group_size"),
        ({"db": "nfs"}, "executor.db"),
        ({"db": "tcp"}, "executor.db"),  # tcp needs db_address (and tls)
        ({"db": "tls", "db_port": 70000}, "executor.db_port"),
        ({"groupsize": 10}, "executor.groupsize"),
    ],
)
def test_bad_options(options: dict, field: str) -> None:
    with pytest.raises(ExecutorError) as err:
        SlurmExecutor(lambda outcome: None, **options)
    assert err.value.field == field and "\n" not in str(err.value)


def test_database_access_modes() -> None:
    assert SlurmExecutor(lambda o: None).db_access == "none"  # the default on clusters
    served = SlurmExecutor(lambda o: None, db="tls", db_host="10.0.0.1", db_port=8100)
    assert served.db_access == "tcp" and served.serve_tls == ("10.0.0.1", 8100)
    assert SlurmExecutor(lambda o: None, db="socket").db_access == "socket"
