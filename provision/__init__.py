"""Provisioning for a deployment: what must exist before the services start and that they must not create
themselves with administrator keys (the recordings bucket, one MinIO user per service). `python -m provision`."""
