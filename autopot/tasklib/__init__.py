"""What the four task templates' ``doIt.py`` run: select, md_select, sp_calc, train.

Each module's ``main()`` runs inside its run directory under a
:class:`autopot.task.TaskContext`: it reads its parameters, works on the input files
copied into the run directory, writes its outputs there and pushes its figures to the
database. Outputs have fixed names so the orchestrator and ``autopot export`` find them.
"""

SELECTED = "selected.cfg"  # select / md_select: configurations chosen for sp_calc
RESULT = "result.cfg"  # sp_calc: the configuration with reference energy/forces/stress
POTENTIAL = "pot.mtp"  # train: the trained potential (its active set beside it)
TRAINING_SET = "ts.cfg"  # train: the training set it was fitted on
