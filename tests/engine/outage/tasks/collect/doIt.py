"""Reads the work runs' quantities through the records and pushes their values (the
'training set' of this toy): a lost or repeated work result changes it."""

from autopot.task import TaskContext

with TaskContext.open() as ctx:
    runs = ctx.records.runs_by_id("work", ctx.params["ids"], state="FINISHED", field="ids")
    values = sorted(int(r.quantities["value"]) for r in runs)
    ctx.push("values", values)
    ctx.push("vec_sum", float(sum(float(r.quantities["vec"].sum()) for r in runs)))
