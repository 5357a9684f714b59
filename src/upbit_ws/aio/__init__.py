"""The asyncio shell: transport adapter, managed connections, REST client, routing, manager."""
