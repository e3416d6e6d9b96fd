"""The forum bridge: adapter, backends, the China working calendar and the platform's deadlines."""
