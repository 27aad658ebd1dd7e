"""How models run: one :class:`~modelport.api.deployers.base.Deployer` interface, two implementations."""
