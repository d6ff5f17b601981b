"""Double-win verdicts, extreme sparsity, tables, figures and the report."""
