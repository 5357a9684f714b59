"""The ``upbit-ws`` command line."""
