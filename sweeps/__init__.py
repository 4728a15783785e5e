"""Every paper table as one sweep: multirun configs (``conf/sweep/<name>.yaml``), the registry of
paper tables (``sweeps.tables``) and the aggregator that prints a table from a sweep's job directories
(``python -m sweeps.aggregate``; failed jobs are recorded by ``engine.failures``). See docs/SWEEPS.md.
"""
