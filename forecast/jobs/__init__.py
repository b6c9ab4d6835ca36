"""The jobs: what a user asks the system to do, as plain Python functions.

Each module holds the jobs of one command group (``data``, ``forecasting``, ``experiments``,
``scenarios``, ``ledger``, ``demo``). They take paths and values, never print (progress lines go
to an optional ``echo`` callback), return a result whose ``summary()`` is the text the command
line shows, and raise the errors of :data:`forecast.jobs.common.USER_ERRORS` for what a user
can get wrong. :mod:`forecast.api` gathers them; the CLI, the demo and the tests call them.
"""
