"""Orchestration behind run.py: config resolvers, building objects from config, the train/test
pipeline and the results it writes."""
