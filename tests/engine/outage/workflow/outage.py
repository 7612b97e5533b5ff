"""Outage toy orchestrator: N work tasks, then one collect over their recorded results."""

import argparse


def populate_arg_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=6, help="number of work tasks")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each work task takes")


async def main(workflow, n: int = 6, sleep: float = 0.0) -> None:
    works = await workflow.work.create_tasks(i=list(range(n)), sleep=sleep)
    await workflow.collect.create_tasks(ids=[[r.id for r in works]])
