"""The terminal dashboard of ``upbit-ws demo``: a Textual app over the public API.

:mod:`.model` holds what the components received (pure, no Textual); :mod:`.render` turns it
into Rich renderables; :mod:`.app` is the Textual app that wires them to a
:class:`~upbit_ws.WebSocketManager` and, in the demo, the embedded simulator. Textual is an
optional dependency (the ``dashboard`` extra): import :mod:`.app` only when it is installed.
"""
