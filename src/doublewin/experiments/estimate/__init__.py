"""What a plan costs before it runs: image passes (passes), measured rates (rates), seconds per
job (cost), the schedule on N workers (schedule), what the savers spend (savers)."""
