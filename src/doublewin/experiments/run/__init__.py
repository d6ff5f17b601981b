"""Running a plan: the run folder (folder), one job (job), the scheduler and its executors, the
run (execute), results.csv rows (results), the report's facts (report_meta), the demo (demo)."""
