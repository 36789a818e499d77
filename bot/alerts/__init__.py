"""Notifications: what happened to a bot, told through apprise (``NOTIFY_URLS``).

``sink`` turns the bot's events into words, ``batching`` rate limits them per kind,
``delivery`` sends them from a worker thread, ``watch`` notices dead bots. The loop only
ever puts an event on a bounded queue: delivery never slows nor stops it.
"""
