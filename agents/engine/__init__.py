"""The built-in content engine: the agent hierarchy that writes, checks and delivers content.

Its own Django app (label `engine`) inside agents/, because it sits on top of the agent
runtime and the advisors app and keeps its own tables: the topic bank and feeds, the
compliance rules, the engine settings, cycles and each advisor's progress through a cycle.
"""
