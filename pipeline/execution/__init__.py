"""Step 5, where items run: a whole run (:mod:`~pipeline.execution.run`: plan, execute, assemble), the one
path from a work item to its part file with retries and progress counting (:mod:`~pipeline.execution.core`),
and the executors that differ only in where that runs: in process, producer processes feeding one model
(:mod:`~pipeline.execution.feeder`), Ray actors (:mod:`~pipeline.execution.ray_executor`). The progress bar:
:mod:`~pipeline.execution.progress`."""
