"""The store: models, migrations, the bot's writes and the console's read-only queries."""
