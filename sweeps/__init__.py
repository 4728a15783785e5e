"""Every paper table as one sweep: multirun configs (``conf/sweep/<name>.yaml``), the registry of
paper tables (``sweeps.tables``), fail-soft jobs (``sweeps.failures``) and the aggregator that
prints a table from a sweep's job directories (``python -m sweeps.aggregate``). See docs/SWEEPS.md.
"""
