import tests.agents.sample_agents  # noqa: F401  (registers the test agents before the database is set up)
