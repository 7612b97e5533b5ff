"""Outage toy orchestrator: N work tasks, then one collect over their recorded results."""

import argparse


def populate_arg_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=6, help="number of work tasks")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each work task takes")
    parser.add_argument("--kill-once", type=int, default=-1, help="index of a task killed once")


async def main(workflow, n: int = 6, sleep: float = 0.0, kill_once: int = -1) -> None:
    works = workflow.work.create_tasks(i=[i for i in range(n) if i != kill_once], sleep=sleep)
    if kill_once >= 0:
        works += workflow.work.create_tasks(i=kill_once, sleep=sleep, kill_once=True)
    await works
    await workflow.collect.create_tasks(ids=[[r.id for r in works]])
