"""Durable tasks: DBOS runs the workflows, our `tasks` rows are what the API shows."""
