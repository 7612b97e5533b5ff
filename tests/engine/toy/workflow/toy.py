"""Toy orchestrator: N work tasks, then one collect task once all have finished."""

import argparse


def populate_arg_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=10, help="number of work tasks")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each work task sleeps")
    parser.add_argument("--fail", type=int, default=-1, help="index of a work task that fails")


async def main(workflow, n: int = 10, sleep: float = 0.0, fail: int = -1) -> None:
    works = workflow.work.create_tasks(i=list(range(n)), sleep=sleep)
    if fail >= 0:
        works += workflow.work.create_tasks(i=fail, sleep=sleep, fail=True)
    await works
    workflow.log(f"{len(works)} work tasks finished")
    collect = await workflow.collect.create_tasks(work_dirs=[[str(r.directory) for r in works]])
    workflow.log(f"collected: total = {collect[0].quantities['total']}")
