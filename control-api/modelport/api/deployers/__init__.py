"""How models run: one ``Deployer`` interface (``base``), a local and a Kubernetes one."""
