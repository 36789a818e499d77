"""Console pages run by ``console.py``'s navigation (not a ``pages/`` folder, so no page
can be opened directly around the sidebar and the password gate)."""
